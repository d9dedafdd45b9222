import { Button, Stack, Typography, useMediaQuery, type Theme } from '@mui/material';
import AddIcon from '@mui/icons-material/Add';
import {
  BooleanField,
  BooleanInput,
  Create,
  Datagrid,
  Edit,
  EditButton,
  Link,
  List,
  ReferenceManyField,
  SelectInput,
  Show,
  SimpleForm,
  SimpleList,
  SimpleShowLayout,
  TextField,
  TextInput,
  TopToolbar,
  required,
  useRecordContext,
} from 'react-admin';
import { BudgetStatusField } from './budget-status.tsx';
import { ConfirmDelete } from './confirm-delete.tsx';
import { EditForm } from './edit-form.tsx';
import { LimitInputs, ServerErrors } from './form-parts.tsx';
import { KeyActions } from './key-dialogs.tsx';
import { BreakerField, FailoverField, StatusField } from './status.tsx';
import { Writable } from './writable.tsx';

const dns = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const dnsName = (value: string | undefined) =>
  value === undefined || dns.test(value) ? undefined : 'lower-case letters, digits and dashes';

export const statusChoices = ['Ready', 'Suspended', 'Revoked', 'Stalled', 'Reconciling', 'Pending', 'NotReady'].map(
  (id) => ({ id, name: id }),
);

const userFilters = [
  <TextInput key="q" source="q" label="Search" alwaysOn />,
  <SelectInput key="status" source="status" choices={statusChoices} />,
];

export const isSmall = (theme: Theme) => theme.breakpoints.down('sm');

function UserRowActions() {
  const record = useRecordContext<{ id: string }>();
  if (record === undefined) return null;
  return (
    <Writable namespace={record.id.split('/')[0]}>
      <Stack direction="row" spacing={1} onClick={(event) => event.stopPropagation()}>
        <EditButton />
        <ConfirmDelete resource="users" id={record.id} />
      </Stack>
    </Writable>
  );
}

export function UserList() {
  const small = useMediaQuery(isSmall);
  return (
    <List filters={userFilters} sort={{ field: 'name', order: 'ASC' }}>
      {small ? (
        <SimpleList
          primaryText={(record) => record.displayName || record.name}
          secondaryText={(record) => `${record.id} · ${record.status}`}
          linkType="show"
        />
      ) : (
        <Datagrid rowClick="show" bulkActionButtons={false}>
          <TextField source="namespace" />
          <TextField source="name" />
          <TextField source="displayName" />
          <BooleanField source="suspended" />
          <StatusField label="Status" />
          <UserRowActions />
        </Datagrid>
      )}
    </List>
  );
}

function UserKeys() {
  const record = useRecordContext<{ id: string }>();
  const small = useMediaQuery(isSmall);
  if (record === undefined) return null;
  const source = encodeURIComponent(JSON.stringify({ userId: record.id, name: `${record.id.split('/')[1]}-laptop` }));
  return (
    <Stack spacing={1} sx={{ width: '100%' }}>
      <Typography variant="h2" sx={{ fontSize: '1.25rem', fontWeight: 500 }}>
        Access keys
      </Typography>
      <Writable namespace={record.id.split('/')[0]}>
        <div>
          <Button
            variant="contained"
            startIcon={<AddIcon />}
            component={Link}
            to={`/access-keys/create?source=${source}`}
          >
            Issue key
          </Button>
        </div>
      </Writable>
      <ReferenceManyField reference="access-keys" target="userId" label={false}>
        {small ? (
          <SimpleList
            primaryText={(key) => key.name}
            secondaryText={(key) => `${key.routing} · ${key.status} · breaker ${key.breakerState}`}
            linkType="edit"
            resource="access-keys"
          />
        ) : (
          <Datagrid bulkActionButtons={false} rowClick={false}>
            <TextField source="name" />
            <TextField source="routing" />
            <TextField source="keyPrefix" label="Key prefix" />
            <StatusField label="Status" />
            <BudgetStatusField label="Budget" summary />
            <BreakerField label="Breaker" />
            <FailoverField label="Last failover" />
            <KeyRowActions />
          </Datagrid>
        )}
      </ReferenceManyField>
    </Stack>
  );
}

export function KeyRowActions() {
  const record = useRecordContext<{ id: string; revoked: boolean }>();
  if (record === undefined) return null;
  return (
    <Writable namespace={record.id.split('/')[0]}>
      <Stack direction="row" sx={{ flexWrap: 'wrap' }}>
        <EditButton resource="access-keys" record={record} />
        <KeyActions id={record.id} revoked={record.revoked} />
        <ConfirmDelete resource="access-keys" id={record.id} />
      </Stack>
    </Writable>
  );
}

function UserShowActions() {
  const record = useRecordContext<{ id: string }>();
  return (
    <TopToolbar>
      <Writable namespace={record?.id.split('/')[0]}>
        <EditButton />
        {record === undefined ? null : <ConfirmDelete resource="users" id={record.id} redirectTo="list" />}
      </Writable>
    </TopToolbar>
  );
}

export const UserShow = () => (
  <Show actions={<UserShowActions />}>
    <SimpleShowLayout>
      <TextField source="id" />
      <TextField source="displayName" />
      <TextField source="description" />
      <BooleanField source="suspended" />
      <StatusField label="Status" />
      <TextField source="readyMessage" label="Operator says" />
      <BudgetStatusField label="Spend against budget" />
      <UserKeys />
    </SimpleShowLayout>
  </Show>
);

export const UserCreate = () => (
  <Create redirect="show">
    <SimpleForm>
      <ServerErrors />
      <TextInput source="namespace" defaultValue="default" validate={[required(), dnsName]} />
      <TextInput source="name" validate={[required(), dnsName]} />
      <TextInput source="displayName" />
      <TextInput source="description" multiline />
    </SimpleForm>
  </Create>
);

export const UserEdit = () => (
  <Edit mutationMode="pessimistic" redirect="show">
    <EditForm resource="users">
      <TextInput source="displayName" />
      <TextInput source="description" multiline />
      <BooleanInput source="suspended" helperText="Every access key of a suspended user is refused by the proxy." />
      <LimitInputs />
    </EditForm>
  </Edit>
);
