import { useMediaQuery } from '@mui/material';
import { Datagrid, DateField, List, SelectInput, SimpleList, TextField, TextInput, FunctionField } from 'react-admin';
import { isSmall } from './users.tsx';

const outcomes = ['success', 'failure', 'denied'].map((id) => ({ id, name: id }));
const actions = ['login', 'logout', 'create', 'update', 'delete', 'rotate', 'revoke', 'suspend'].map((id) => ({
  id,
  name: id,
}));
const filters = [
  <TextInput key="actor" source="actor" label="Who (subject or email)" alwaysOn />,
  <SelectInput key="action" source="action" choices={actions} />,
  <SelectInput key="outcome" source="outcome" choices={outcomes} />,
  <TextInput key="namespace" source="namespace" />,
];

interface AuditRecord {
  actorSubject: string;
  actorEmail: string | null;
  actorMethod: string;
  resourceKind: string | null;
  namespace: string | null;
  name: string | null;
}
const who = (record: AuditRecord) =>
  record.actorMethod === 'break-glass'
    ? `${record.actorSubject} (break-glass)`
    : `${record.actorEmail ?? record.actorSubject} (${record.actorMethod})`;
const what = (record: AuditRecord) =>
  record.resourceKind === null ? '' : `${record.resourceKind} ${record.namespace ?? ''}/${record.name ?? ''}`;

/** The audit trail: every admin write and sign-in, by whom, newest first. */
export function AuditList() {
  const small = useMediaQuery(isSmall);
  return (
    <List filters={filters} sort={{ field: 'id', order: 'DESC' }} exporter={false}>
      {small ? (
        <SimpleList
          primaryText={(record) => `${record.action} ${what(record as AuditRecord)} · ${record.outcome}`}
          secondaryText={(record) => `${who(record as AuditRecord)} · ${record.occurredAt}`}
          linkType={false}
        />
      ) : (
        <Datagrid bulkActionButtons={false} rowClick={false}>
          <DateField source="occurredAt" label="When" showTime />
          <FunctionField label="Who" render={(record: AuditRecord) => who(record)} />
          <TextField source="actorRole" label="Role" />
          <TextField source="action" />
          <FunctionField label="Resource" render={(record: AuditRecord) => what(record)} />
          <TextField source="outcome" />
          <TextField source="status" />
          <TextField source="detail" />
        </Datagrid>
      )}
    </List>
  );
}
