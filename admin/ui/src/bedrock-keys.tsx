import { Stack, useMediaQuery } from '@mui/material';
import {
  AutocompleteInput,
  Create,
  Datagrid,
  Edit,
  EditButton,
  List,
  PasswordInput,
  ReferenceInput,
  SelectInput,
  SimpleForm,
  SimpleList,
  TextField,
  TextInput,
  required,
  useRecordContext,
} from 'react-admin';
import { ConfirmDelete } from './confirm-delete.tsx';
import { ServerErrors } from './form-parts.tsx';
import { StatusField } from './status.tsx';
import { Writable } from './writable.tsx';
import { EditForm } from './edit-form.tsx';
import { dnsName, isSmall } from './users.tsx';

function BedrockRowActions() {
  const record = useRecordContext<{ id: string }>();
  if (record === undefined) return null;
  return (
    <Writable namespace={record.id.split('/')[0]}>
      <Stack direction="row">
        <EditButton label="Replace" />
        <ConfirmDelete resource="bedrock-keys" id={record.id} />
      </Stack>
    </Writable>
  );
}

export function BedrockKeyList() {
  const small = useMediaQuery(isSmall);
  return (
    <List sort={{ field: 'name', order: 'ASC' }} filters={[<TextInput key="q" source="q" label="Search" alwaysOn />]}>
      {small ? (
        <SimpleList
          primaryText={(record) => record.id}
          secondaryText={(record) => `for ${record.accessKeyId} · ${record.status}`}
          linkType="edit"
        />
      ) : (
        <Datagrid bulkActionButtons={false} rowClick={false}>
          <TextField source="namespace" />
          <TextField source="name" />
          <TextField source="accessKey" label="Access key" />
          <TextField source="fingerprint" />
          <TextField source="api" label="Default API" emptyText="—" />
          <StatusField label="Status" />
          <BedrockRowActions />
        </Datagrid>
      )}
    </List>
  );
}

/** Register a Bedrock API key for an access key: written to a Secret, encrypted by the operator. */
export const BedrockKeyCreate = () => (
  <Create redirect="list">
    <SimpleForm>
      <ServerErrors />
      <TextInput source="name" validate={[required(), dnsName]} />
      <ReferenceInput source="accessKeyId" reference="access-keys">
        <AutocompleteInput optionText="id" label="Access key" validate={required()} />
      </ReferenceInput>
      <PasswordInput source="apiKey" label="Bedrock API key" validate={required()} />
      <SelectInput
        source="api"
        label="Default Bedrock API"
        choices={[
          { id: 'Converse', name: 'Converse' },
          { id: 'InvokeModel', name: 'InvokeModel' },
        ]}
        emptyText="Not set: InvokeModel"
        helperText="Used when the access key names no Bedrock API"
      />
    </SimpleForm>
  </Create>
);

/** Replace the API key (the same Secret; the operator re-encrypts it). The old key is never shown. */
export const BedrockKeyEdit = () => (
  <Edit mutationMode="pessimistic" redirect="list" title="Replace a Bedrock API key">
    <EditForm resource="bedrock-keys">
      <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2}>
        <TextField source="id" />
        <TextField source="fingerprint" />
        <StatusField />
      </Stack>
      <PasswordInput source="apiKey" label="New Bedrock API key" validate={required()} />
    </EditForm>
  </Edit>
);
