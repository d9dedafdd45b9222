import { useState } from 'react';
import { Stack, useMediaQuery } from '@mui/material';
import {
  AutocompleteInput,
  BooleanInput,
  Create,
  Datagrid,
  Edit,
  List,
  ReferenceField,
  ReferenceInput,
  SelectInput,
  SimpleForm,
  SimpleList,
  TextField,
  TextInput,
  required,
  useRecordContext,
  useRedirect,
  type HttpError,
} from 'react-admin';
import { bedrockFromForm, type BedrockForm, type ModelMapRow } from './data-provider.ts';
import { BedrockInputs, LimitInputs, ServerErrors, routingChoices } from './form-parts.tsx';
import { KeyActions, KeyOnceDialog, type IssuedKey } from './key-dialogs.tsx';
import { apiUrl, httpClient } from './providers.ts';
import { BudgetStatusField } from './budget-status.tsx';
import { BreakerField, FailoverField, StatusField } from './status.tsx';
import { EditForm } from './edit-form.tsx';
import { KeyRowActions, dnsName, isSmall, statusChoices } from './users.tsx';

const keyFilters = [
  <TextInput key="q" source="q" label="Search" alwaysOn />,
  <SelectInput key="status" source="status" choices={statusChoices} />,
  <SelectInput
    key="breakerState"
    source="breakerState"
    choices={['closed', 'failing', 'open', 'half-open'].map((id) => ({ id, name: id }))}
  />,
];

export function AccessKeyList() {
  const small = useMediaQuery(isSmall);
  return (
    <List filters={keyFilters} sort={{ field: 'name', order: 'ASC' }}>
      {small ? (
        <SimpleList
          primaryText={(record) => record.id}
          secondaryText={(record) => `${record.routing} · ${record.status} · breaker ${record.breakerState}`}
          linkType="edit"
        />
      ) : (
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
          <FailoverField label="Last failover" />
          <KeyRowActions />
        </Datagrid>
      )}
    </List>
  );
}

interface IssueForm {
  userId: string;
  name: string;
  routing: string;
  bedrock?: BedrockForm;
  modelMapRows?: ModelMapRow[];
}

/**
 * Issue a key with its routing and Bedrock settings. Not through the data provider: its answer
 * holds the key, which must not land in react-admin's record cache; the key goes to the
 * shown-once dialog only, and the facade's validation errors go on the fields (SimpleForm's
 * onSubmit returns them).
 */
export function AccessKeyCreate() {
  const [issued, setIssued] = useState<IssuedKey & { userId: string }>();
  const redirect = useRedirect();
  const submit = async (values: Partial<IssueForm>) => {
    const [namespace = '', user = ''] = (values.userId ?? '').split('/', 2);
    try {
      const { json } = await httpClient(`${apiUrl}/access-keys`, {
        method: 'POST',
        body: JSON.stringify({
          namespace,
          name: values.name,
          user,
          routing: values.routing,
          bedrock: bedrockFromForm(values.bedrock, values.modelMapRows),
        }),
      });
      setIssued({ ...(json as IssuedKey), userId: values.userId ?? '' });
      return undefined;
    } catch (caught) {
      const errors = (caught as HttpError).body?.errors as Record<string, unknown> | undefined;
      return errors ?? { root: { serverError: caught instanceof Error ? caught.message : String(caught) } };
    }
  };
  return (
    <Create title="Issue an access key">
      <SimpleForm onSubmit={submit} defaultValues={{ routing: 'PlanWithFailover' }}>
        <ServerErrors />
        <ReferenceInput source="userId" reference="users">
          <AutocompleteInput optionText="id" label="User" validate={required()} />
        </ReferenceInput>
        <TextInput source="name" label="Key name" validate={[required(), dnsName]} />
        <SelectInput source="routing" choices={routingChoices} validate={required()} />
        <BedrockInputs />
      </SimpleForm>
      <KeyOnceDialog
        issued={issued}
        onClose={() => {
          const userId = issued?.userId ?? '';
          setIssued(undefined);
          redirect('show', 'users', userId);
        }}
      />
    </Create>
  );
}

function RotateRevoke() {
  const record = useRecordContext<{ id: string; revoked: boolean }>();
  return record === undefined ? null : <KeyActions id={record.id} revoked={record.revoked} />;
}

export const AccessKeyEdit = () => (
  <Edit mutationMode="pessimistic" redirect="list">
    <EditForm resource="access-keys">
      <Stack direction={{ xs: 'column', sm: 'row' }} spacing={2} sx={{ alignItems: { sm: 'center' } }}>
        <TextField source="id" />
        <StatusField />
        <RotateRevoke />
      </Stack>
      <BudgetStatusField label="Spend against budget" />
      <SelectInput source="routing" choices={routingChoices} validate={required()} />
      <BooleanInput source="revoked" helperText="A revoked key is refused by every proxy replica within a second." />
      <BedrockInputs />
      <LimitInputs />
    </EditForm>
  </Edit>
);
