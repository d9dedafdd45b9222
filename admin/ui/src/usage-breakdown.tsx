import { useEffect, useState } from 'react';
import {
  Card,
  CardContent,
  CardHeader,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Typography,
} from '@mui/material';
import {
  AutocompleteInput,
  Datagrid,
  DateTimeInput,
  FunctionField,
  List,
  NumberField,
  ReferenceInput,
  SelectInput,
  TextField,
  TextInput,
  TopToolbar,
  useAuthState,
  type RaRecord,
} from 'react-admin';
import { apiUrl, httpClient } from './providers.ts';
import { costText, CsvExportButton } from './requests.tsx';

const options = (values: string[]) => values.map((id) => ({ id, name: id }));

const filters = [
  <SelectInput key="by" source="by" label="By" choices={options(['user', 'key', 'model', 'provider'])} alwaysOn />,
  <SelectInput key="bucket" source="bucket" label="Per" choices={options(['hour', 'day', 'month'])} alwaysOn />,
  <TextInput key="q" source="q" label="Search" alwaysOn />,
  <SelectInput key="provider" source="provider" choices={options(['plan', 'bedrock'])} />,
  <ReferenceInput key="userId" source="userId" reference="users">
    <AutocompleteInput label="User" optionText="id" />
  </ReferenceInput>,
  <ReferenceInput key="accessKeyId" source="accessKeyId" reference="access-keys">
    <AutocompleteInput label="Access key" optionText="id" />
  </ReferenceInput>,
  <DateTimeInput key="from" source="from" label="From" />,
  <DateTimeInput key="to" source="to" label="To" />,
];

interface PriceTable {
  effectiveDate: string;
  sources: string[];
  bedrockRegionalMultiplier: number;
  entries: Array<{
    family: string;
    from: string;
    input: number;
    output: number;
    cacheRead: number;
    cacheWrite5m: number;
    cacheWrite1h: number;
    regionalPremium?: boolean;
    overridden: boolean;
  }>;
}

/** The one price table every cost comes from, read-only: effective date, sources, USD per million tokens. */
function PriceTableCard() {
  const { authenticated } = useAuthState();
  const [table, setTable] = useState<PriceTable>();
  useEffect(() => {
    if (authenticated !== true) return;
    httpClient(`${apiUrl}/prices`).then(
      (answer) => setTable(answer.json as PriceTable),
      () => undefined,
    );
  }, [authenticated]);
  if (table === undefined) return null;
  return (
    <Card sx={{ mt: 2 }} data-testid="price-table">
      <CardHeader title="Price table" titleTypographyProps={{ component: 'h2', variant: 'h6' }} />
      <CardContent sx={{ overflowX: 'auto' }}>
        <Typography>
          Effective {table.effectiveDate}; Bedrock regional endpoints ×{table.bedrockRegionalMultiplier}. Sources:{' '}
          {table.sources.join('; ')}. USD per million tokens; set CCPROXY_PRICE_TABLE_FILE to change it.
        </Typography>
        <Table size="small">
          <TableHead>
            <TableRow>
              {['Model family', 'From', 'Input', 'Output', 'Cache read', 'Cache write 5 m', 'Cache write 1 h', ''].map(
                (name) => (
                  <TableCell key={name}>{name}</TableCell>
                ),
              )}
            </TableRow>
          </TableHead>
          <TableBody>
            {table.entries.map((entry) => (
              <TableRow key={`${entry.family}|${entry.from}`}>
                <TableCell>{entry.family}</TableCell>
                <TableCell>{entry.from}</TableCell>
                <TableCell>{entry.input}</TableCell>
                <TableCell>{entry.output}</TableCell>
                <TableCell>{entry.cacheRead}</TableCell>
                <TableCell>{entry.cacheWrite5m}</TableCell>
                <TableCell>{entry.cacheWrite1h}</TableCell>
                <TableCell>{entry.overridden ? 'from the override file' : ''}</TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </CardContent>
    </Card>
  );
}

/** Usage and cost by user, key, model or provider, per hour, day or month, with the price table below. */
export function UsageBreakdownList() {
  return (
    <>
      <List
        title="Usage and cost"
        filters={filters}
        filterDefaultValues={{ by: 'provider', bucket: 'day' }}
        sort={{ field: 'bucketStart', order: 'DESC' }}
        actions={
          <TopToolbar>
            <CsvExportButton path="usage/breakdown.csv" file="usage.csv" />
          </TopToolbar>
        }
        exporter={false}
      >
        <Datagrid bulkActionButtons={false} rowClick={false} size="small">
          <TextField source="bucketStart" label="Period start" />
          <TextField source="group" />
          <NumberField source="requests" />
          <NumberField source="failovers" />
          <NumberField source="inputTokens" label="In" />
          <NumberField source="outputTokens" label="Out" />
          <NumberField source="cacheReadTokens" label="Cache read" />
          <NumberField source="cacheCreationTokens" label="Cache write" />
          <FunctionField
            source="costMicroUsd"
            label="Cost"
            render={(r: RaRecord) => <span data-testid="usage-cost">{costText(r.costMicroUsd)}</span>}
          />
          <NumberField source="unpricedRequests" label="Unpriced requests" sortable={false} />
        </Datagrid>
      </List>
      <PriceTableCard />
    </>
  );
}
