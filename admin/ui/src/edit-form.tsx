import type { ReactNode } from 'react';
import { SaveButton, SimpleForm, Toolbar, useRecordContext } from 'react-admin';
import { ConfirmDelete } from './confirm-delete.tsx';
import { ServerErrors } from './form-parts.tsx';

/** Save, and Delete with the confirmation that names what goes with it. */
export function EditToolbar({ resource }: { resource: string }) {
  const record = useRecordContext<{ id: string }>();
  return (
    <Toolbar sx={{ justifyContent: 'space-between' }}>
      <SaveButton />
      {record === undefined ? null : <ConfirmDelete resource={resource} id={record.id} redirectTo="list" />}
    </Toolbar>
  );
}

/**
 * Every edit page's form. The record is fetched again while the form is open (the list's copy is
 * shown first, then the fresh one; on window focus; after the operator writes status), and
 * react-admin resets the form to each new copy: without `keepDirtyValues` what the admin had
 * typed was silently replaced by the stored value and Save went grey (seen in CI on the team
 * budget form). Fields the admin changed stay as typed; the others follow the fresh record.
 */
export function EditForm({ resource, children }: { resource: string; children: ReactNode }) {
  return (
    <SimpleForm toolbar={<EditToolbar resource={resource} />} resetOptions={{ keepDirtyValues: true }}>
      <ServerErrors />
      {children}
    </SimpleForm>
  );
}
