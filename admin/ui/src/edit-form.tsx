import { Alert } from '@mui/material';
import { useState, type ReactNode } from 'react';
import { useFormState } from 'react-hook-form';
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
 * budget form). Fields the admin changed stay as typed; the others follow the fresh record, and
 * Save writes onto it. A field the admin changed that someone else changed too is named above
 * the form before Save replaces it (never silently).
 */
export function EditForm({ resource, children }: { resource: string; children: ReactNode }) {
  return (
    <SimpleForm toolbar={<EditToolbar resource={resource} />} resetOptions={{ keepDirtyValues: true }}>
      <ServerErrors />
      <ChangedElsewhere />
      {children}
    </SimpleForm>
  );
}

/** The fields the admin changed whose stored value is no longer the one the form opened with. */
function ChangedElsewhere() {
  const record = useRecordContext<Record<string, unknown>>();
  const [opened] = useState(record);
  const { dirtyFields } = useFormState();
  if (record === undefined || opened === undefined) return null;
  const changed = leafPaths(dirtyFields).filter(
    (path) => JSON.stringify(valueAt(opened, path)) !== JSON.stringify(valueAt(record, path)),
  );
  return changed.length === 0 ? null : (
    <Alert severity="warning" role="status" sx={{ mb: 2, width: '100%' }} data-testid="changed-elsewhere">
      Changed elsewhere while you edited: {changed.join(', ')}. Save replaces the new stored value with yours.
    </Alert>
  );
}

/** `{ a: { b: true }, rows: [..] }` → `['a.b', 'rows']` (an array is one field: its rows have no stable names). */
function leafPaths(dirty: object, prefix = ''): string[] {
  return Object.entries(dirty).flatMap(([key, value]: [string, unknown]) => {
    const path = `${prefix}${key}`;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? leafPaths(value, `${path}.`) : [path];
  });
}

function valueAt(record: Record<string, unknown>, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>(
      (at, key) => (at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[key] : undefined),
      record,
    );
}
