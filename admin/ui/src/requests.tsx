import { Button } from '@mui/material';
import DownloadIcon from '@mui/icons-material/Download';
import {
  AutocompleteInput,
  BooleanField,
  Datagrid,
  DateField,
  DateTimeInput,
  FunctionField,
  List,
  NumberField,
  ReferenceInput,
  SelectInput,
  TextField,
  TextInput,
  TopToolbar,
  useListContext,
  useNotify,
  type RaRecord,
} from 'react-admin';
import { apiUrl, tokenKey } from './providers.ts';

/** Micro-USD as dollars; null is "unpriced" (a model the price table does not know), never $0. */
export const costText = (micro: number | null | undefined, metered = true) =>
  !metered ? '—' : micro === null || micro === undefined ? 'unpriced' : `$${(micro / 1_000_000).toFixed(6)}`;

const choices = (values: string[]) => values.map((id) => ({ id, name: id.replace('_', ' ') }));

const requestFilters = [
  <TextInput key="q" source="q" label="Search" alwaysOn />,
  <ReferenceInput key="userId" source="userId" reference="users">
    <AutocompleteInput label="User" optionText="id" />
  </ReferenceInput>,
  <ReferenceInput key="accessKeyId" source="accessKeyId" reference="access-keys">
    <AutocompleteInput label="Access key" optionText="id" />
  </ReferenceInput>,
  <SelectInput key="provider" source="provider" choices={choices(['plan', 'bedrock', 'none'])} />,
  <SelectInput
    key="outcome"
    source="outcome"
    choices={choices(['ok', 'client_error', 'upstream_error', 'incomplete'])}
  />,
  <DateTimeInput key="from" source="from" label="From" />,
  <DateTimeInput key="to" source="to" label="To" />,
];

/**
 * Downloads the server's CSV for the list's current filters. The session is a bearer token (no
 * cookie), so the file is fetched with it and handed to the browser as a blob.
 */
export function CsvExportButton({ path, file }: { path: string; file: string }) {
  const { filterValues } = useListContext();
  const notify = useNotify();
  const download = async () => {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(filterValues as Record<string, unknown>))
      if (value !== undefined && value !== null && value !== '')
        params.set(name, value instanceof Date ? value.toISOString() : String(value));
    const response = await fetch(`${apiUrl}/${path}?${params}`, {
      headers: { Authorization: `Bearer ${sessionStorage.getItem(tokenKey) ?? ''}` },
    });
    if (!response.ok) {
      notify(((await response.json()) as { message?: string }).message ?? 'Export failed', { type: 'error' });
      return;
    }
    const link = document.createElement('a');
    link.href = URL.createObjectURL(await response.blob());
    link.download = file;
    link.click();
    URL.revokeObjectURL(link.href);
  };
  return (
    <Button size="small" startIcon={<DownloadIcon />} onClick={() => void download()}>
      Export CSV
    </Button>
  );
}

const tokens = (record: RaRecord, field: string) =>
  record.metered === false ? '—' : Number(record[field]).toLocaleString('en');

/** One row per request the proxy served for a key, failures included; no bodies, no keys. */
export function RequestList() {
  return (
    <List
      filters={requestFilters}
      sort={{ field: 'occurredAt', order: 'DESC' }}
      actions={
        <TopToolbar>
          <CsvExportButton path="requests.csv" file="requests.csv" />
        </TopToolbar>
      }
      exporter={false}
      perPage={25}
    >
      <Datagrid bulkActionButtons={false} rowClick={false} size="small">
        <DateField source="occurredAt" label="Time" showTime />
        <TextField source="userId" label="User" sortable={false} />
        <TextField source="accessKeyId" label="Key" sortable={false} />
        <TextField source="model" sortable={false} emptyText="—" />
        <FunctionField label="Provider" render={(r: RaRecord) => r.provider ?? 'none'} />
        <BooleanField source="failover" sortable={false} />
        <FunctionField
          source="status"
          label="Status"
          render={(r: RaRecord) =>
            `${r.status ?? '—'} ${String(r.outcome).replace('_', ' ')}${r.errorCode ? ` (${r.errorCode})` : ''}`
          }
        />
        <NumberField source="latencyMs" label="Latency ms" />
        <NumberField source="ttfbMs" label="TTFB ms" emptyText="—" />
        <FunctionField label="In" render={(r: RaRecord) => tokens(r, 'inputTokens')} />
        <FunctionField label="Out" render={(r: RaRecord) => tokens(r, 'outputTokens')} />
        <FunctionField label="Cache read" render={(r: RaRecord) => tokens(r, 'cacheReadTokens')} />
        <FunctionField label="Cache write" render={(r: RaRecord) => tokens(r, 'cacheCreationTokens')} />
        <FunctionField
          source="costMicroUsd"
          label="Cost"
          render={(r: RaRecord) => <span data-testid="cost">{costText(r.costMicroUsd, r.metered)}</span>}
        />
      </Datagrid>
    </List>
  );
}
