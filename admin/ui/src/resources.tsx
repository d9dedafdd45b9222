import { Chip, Stack } from '@mui/material';
import {
  BooleanField,
  BooleanInput,
  Create,
  Datagrid,
  DateField,
  Edit,
  List,
  ReferenceField,
  Show,
  SimpleForm,
  SimpleShowLayout,
  TextField,
  TextInput,
  required,
  useRecordContext,
  ReferenceManyField,
  SelectInput,
  ReferenceInput,
  AutocompleteInput,
  PasswordInput,
} from 'react-admin';
import { IssueKeyButton, KeyActions } from './key-dialogs.tsx';

const dns = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dnsName = (value: string | undefined) =>
  value === undefined || dns.test(value) ? undefined : 'lower-case letters, digits and dashes';

/** Ready as the operator reported it, with its reason and message on hover. */
export function StatusField({ label: _label }: { label?: string }) {
  const record = useRecordContext<{ ready: string; readyReason: string; readyMessage: string }>();
  if (record === undefined) return null;
  const color = record.ready === 'True' ? 'success' : record.ready === 'False' ? 'warning' : 'default';
  return (
    <Chip
      size="small"
      color={color}
      label={`${record.ready === 'True' ? 'Ready' : record.readyReason}`}
      title={record.readyMessage}
    />
  );
}

export function BreakerField({ label: _label }: { label?: string }) {
  const record = useRecordContext<{ breakerState: string }>();
  if (record === undefined) return null;
  const color = record.breakerState === 'open' ? 'error' : record.breakerState === 'closed' ? 'default' : 'warning';
  return <Chip size="small" variant="outlined" color={color} label={`breaker ${record.breakerState}`} />;
}

const userFilters = [
  <TextInput key="q" source="q" label="Search" alwaysOn />,
  <TextInput key="namespace" source="namespace" label="Namespace" />,
];

export const UserList = () => (
  <List filters={userFilters} sort={{ field: 'name', order: 'ASC' }}>
    <Datagrid rowClick="show" bulkActionButtons={false}>
      <TextField source="namespace" />
      <TextField source="name" />
      <TextField source="displayName" />
      <BooleanField source="suspended" />
      <StatusField label="Status" />
    </Datagrid>
  </List>
);

function UserKeys() {
  const record = useRecordContext<{ namespace: string; name: string }>();
  if (record === undefined) return null;
  return (
    <Stack spacing={1}>
      <div>
        <IssueKeyButton namespace={record.namespace} user={record.name} />
      </div>
      <ReferenceManyField reference="access-keys" target="userId" label="Access keys">
        <Datagrid bulkActionButtons={false} rowClick={false}>
          <TextField source="name" />
          <TextField source="routing" />
          <TextField source="keyPrefix" label="Key prefix" />
          <StatusField label="Status" />
          <BreakerField label="Breaker" />
          <KeyRowActions />
        </Datagrid>
      </ReferenceManyField>
    </Stack>
  );
}

function KeyRowActions() {
  const record = useRecordContext<{ id: string; revoked: boolean }>();
  return record === undefined ? null : <KeyActions id={record.id} revoked={record.revoked} />;
}

export const UserShow = () => (
  <Show>
    <SimpleShowLayout>
      <TextField source="id" />
      <TextField source="displayName" />
      <TextField source="description" />
      <BooleanField source="suspended" />
      <StatusField label="Status" />
      <TextField source="readyMessage" label="Operator says" />
      <UserKeys />
    </SimpleShowLayout>
  </Show>
);

export const UserCreate = () => (
  <Create redirect="show">
    <SimpleForm>
      <TextInput source="namespace" defaultValue="default" validate={[required(), dnsName]} />
      <TextInput source="name" validate={[required(), dnsName]} />
      <TextInput source="displayName" />
      <TextInput source="description" multiline />
    </SimpleForm>
  </Create>
);

export const UserEdit = () => (
  <Edit mutationMode="pessimistic">
    <SimpleForm>
      <TextInput source="displayName" />
      <TextInput source="description" multiline />
      <BooleanInput source="suspended" />
    </SimpleForm>
  </Edit>
);

const keyFilters = [
  <TextInput key="q" source="q" label="Search" alwaysOn />,
  <SelectInput
    key="breakerState"
    source="breakerState"
    choices={['closed', 'failing', 'open', 'half-open'].map((id) => ({ id, name: id }))}
  />,
];

export const AccessKeyList = () => (
  <List filters={keyFilters} sort={{ field: 'name', order: 'ASC' }}>
    <Datagrid bulkActionButtons={false} rowClick={false}>
      <TextField source="namespace" />
      <TextField source="name" />
      <ReferenceField source="userId" reference="users" link="show">
        <TextField source="name" />
      </ReferenceField>
      <TextField source="routing" />
      <TextField source="keyPrefix" label="Key prefix" />
      <StatusField label="Status" />
      <BreakerField label="Breaker" />
      <DateField source="lastFailoverAt" showTime label="Last failover" />
      <KeyRowActions />
    </Datagrid>
  </List>
);

export const BedrockKeyList = () => (
  <List sort={{ field: 'name', order: 'ASC' }}>
    <Datagrid bulkActionButtons={false} rowClick={false}>
      <TextField source="namespace" />
      <TextField source="name" />
      <TextField source="accessKey" label="Access key" />
      <TextField source="fingerprint" />
      <StatusField label="Status" />
    </Datagrid>
  </List>
);

/** Register a Bedrock API key for an access key: written to a Secret, encrypted by the operator. */
export const BedrockKeyCreate = () => (
  <Create redirect="list">
    <SimpleForm>
      <TextInput source="name" validate={[required(), dnsName]} />
      <ReferenceInput source="accessKeyId" reference="access-keys">
        <AutocompleteInput optionText="id" label="Access key" validate={required()} />
      </ReferenceInput>
      <PasswordInput source="apiKey" label="Bedrock API key" validate={required()} />
    </SimpleForm>
  </Create>
);
