import { Box, Stack, Typography, useMediaQuery } from '@mui/material';
import {
  Create,
  Datagrid,
  Edit,
  EditButton,
  List,
  NumberInput,
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
import { ServerErrors } from './form-parts.tsx';
import { StatusField } from './status.tsx';
import { EditForm } from './edit-form.tsx';
import { dnsName, isSmall } from './users.tsx';
import { Writable } from './writable.tsx';

/**
 * Team budgets: a namespace's one TeamBudget (named `team`), over every key of every user of
 * the namespace; spend against it as the operator reports it.
 */
const stateChoices = ['Ok', 'Warning', 'Exhausted', 'Unknown'].map((id) => ({ id, name: id }));
const filters = [
  <TextInput key="q" source="q" label="Search" alwaysOn />,
  <SelectInput key="state" source="state" label="Budget state" choices={stateChoices} />,
];

function RowActions() {
  const record = useRecordContext<{ id: string }>();
  if (record === undefined) return null;
  return (
    <Writable namespace={record.id.split('/')[0]}>
      <Stack direction="row" spacing={1} onClick={(event) => event.stopPropagation()}>
        <EditButton />
        <ConfirmDelete resource="team-budgets" id={record.id} />
      </Stack>
    </Writable>
  );
}

export function TeamBudgetList() {
  const small = useMediaQuery(isSmall);
  return (
    <List filters={filters} sort={{ field: 'namespace', order: 'ASC' }}>
      {small ? (
        <SimpleList
          primaryText={(record) => record.namespace}
          secondaryText={(record) => `${record.state} · ${record.description}`}
          linkType="show"
        />
      ) : (
        <Datagrid rowClick="show" bulkActionButtons={false}>
          <TextField source="namespace" label="Team (namespace)" />
          <TextField source="description" />
          <BudgetStatusField label="Spend against budget" compact />
          <StatusField label="Status" />
          <RowActions />
        </Datagrid>
      )}
    </List>
  );
}

function ShowActions() {
  const record = useRecordContext<{ id: string }>();
  return (
    <TopToolbar>
      <Writable namespace={record?.id.split('/')[0]}>
        <EditButton />
        {record === undefined ? null : <ConfirmDelete resource="team-budgets" id={record.id} redirectTo="list" />}
      </Writable>
    </TopToolbar>
  );
}

export const TeamBudgetShow = () => (
  <Show actions={<ShowActions />}>
    <SimpleShowLayout>
      <TextField source="namespace" label="Team (namespace)" />
      <TextField source="description" />
      <BudgetStatusField label="Spend against budget" />
      <StatusField label="Status" />
      <TextField source="readyMessage" label="Operator says" />
    </SimpleShowLayout>
  </Show>
);

/** The caps of a budget; empty means no cap. */
export function BudgetInputs() {
  return (
    <Box sx={{ width: '100%', maxWidth: 720 }}>
      <Typography variant="h2" sx={{ fontSize: '1.1rem', fontWeight: 500, mt: 2, mb: 1 }}>
        Budget
      </Typography>
      <Box sx={{ display: 'flex', flexWrap: 'wrap', columnGap: 2 }}>
        <NumberInput source="budget.daily.usd" label="Daily budget (USD)" min={0} helperText="Resets 00:00 UTC" />
        <NumberInput source="budget.daily.tokens" label="Daily tokens" min={0} step={1} />
        <NumberInput
          source="budget.monthly.usd"
          label="Monthly budget (USD)"
          min={0}
          helperText="Resets on the 1st, UTC"
        />
        <NumberInput source="budget.monthly.tokens" label="Monthly tokens" min={0} step={1} />
        <NumberInput source="budget.softLimitPercent" label="Warn at (%)" min={1} max={100} helperText="Default 80" />
      </Box>
    </Box>
  );
}

export const TeamBudgetCreate = () => (
  <Create redirect="show">
    <SimpleForm>
      <ServerErrors />
      <TextInput
        source="namespace"
        label="Team (namespace)"
        defaultValue="default"
        validate={[required(), dnsName]}
        helperText="Every key of every user in this namespace counts against the budget"
      />
      <TextInput source="description" multiline />
      <BudgetInputs />
    </SimpleForm>
  </Create>
);

export const TeamBudgetEdit = () => (
  <Edit mutationMode="pessimistic" redirect="show">
    <EditForm resource="team-budgets">
      <TextInput source="description" multiline />
      <BudgetInputs />
    </EditForm>
  </Edit>
);
