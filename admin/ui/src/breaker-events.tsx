import { useEffect, useState } from 'react';
import { Card, CardContent, CardHeader, Chip, Stack, Typography } from '@mui/material';
import {
  AutocompleteInput,
  Datagrid,
  DateField,
  FunctionField,
  List,
  NumberField,
  ReferenceInput,
  TextField,
  TextInput,
  useAuthState,
  type RaRecord,
} from 'react-admin';
import { apiUrl, httpClient } from './providers.ts';

/** ms → "2 h 5 min", "41 s". */
export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  return min < 60 ? `${min} min ${s % 60} s` : `${Math.floor(min / 60)} h ${min % 60} min`;
}

const reasonsText = (reasons: string[]) => {
  const counts = new Map<string, number>();
  for (const reason of reasons) counts.set(reason, (counts.get(reason) ?? 0) + 1);
  return [...counts].map(([reason, n]) => `${reason.replace('status_', 'HTTP ')} ×${n}`).join(', ');
};

const filters = [
  <TextInput key="q" source="q" label="Search" alwaysOn />,
  <ReferenceInput key="accessKeyId" source="accessKeyId" reference="access-keys" alwaysOn>
    <AutocompleteInput label="Access key" optionText="id" />
  </ReferenceInput>,
];

/** Each time a key's breaker opened: why, how long, and how many requests Bedrock served meanwhile. */
export function BreakerEventList() {
  return (
    <List filters={filters} exporter={false} sort={{ field: 'openedAt', order: 'DESC' }}>
      <Datagrid bulkActionButtons={false} rowClick={false} size="small">
        <TextField source="accessKeyId" label="Key" sortable={false} />
        <DateField source="openedAt" label="Opened" showTime sortable={false} />
        <FunctionField
          label="Closed"
          render={(r: RaRecord) => (r.closedAt === null ? 'still open' : new Date(r.closedAt).toLocaleString())}
        />
        <FunctionField label="Open for" render={(r: RaRecord) => duration(r.openMs)} />
        <FunctionField
          label="Why"
          render={(r: RaRecord) => (
            <span data-testid="breaker-reasons">
              {r.failures} failures: {reasonsText(r.reasons)}
            </span>
          )}
        />
        <NumberField source="reopened" label="Failed trials" sortable={false} />
        <NumberField source="bedrockRequests" label="Requests to Bedrock" sortable={false} />
      </Datagrid>
    </List>
  );
}

interface Breaker {
  id: string;
  state: string;
  consecutiveFailures: number;
  openedAt: string | null;
}
interface Opening {
  id: string;
  accessKeyId: string;
  openedAt: string;
  closedAt: string | null;
  openMs: number;
  reasons: string[];
  failures: number;
  bedrockRequests: number;
}

/** The dashboard's breaker card: every key whose breaker is not closed (live) and the latest openings. */
export function BreakerCard() {
  const { authenticated } = useAuthState();
  const [breakers, setBreakers] = useState<Breaker[]>([]);
  const [openings, setOpenings] = useState<Opening[]>([]);
  useEffect(() => {
    if (authenticated !== true) return;
    let live = true;
    const load = () =>
      Promise.all([
        httpClient(`${apiUrl}/breakers?_start=0&_end=1000`),
        httpClient(`${apiUrl}/breaker-events?_start=0&_end=5`),
      ]).then(
        ([now, history]) => {
          if (!live) return;
          setBreakers((now.json as Breaker[]).filter((row) => row.state !== 'closed'));
          setOpenings(history.json as Opening[]);
        },
        () => undefined,
      );
    void load();
    // Live: the breaker state is Postgres's, shared by every proxy replica.
    const timer = setInterval(() => void load(), 10_000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [authenticated]);
  return (
    <Card>
      <CardHeader title="Circuit breakers" titleTypographyProps={{ component: 'h2', variant: 'h6' }} />
      <CardContent>
        <Stack direction="row" spacing={1} useFlexGap flexWrap="wrap" data-testid="live-breakers">
          {breakers.length === 0 ? (
            <Typography>All closed</Typography>
          ) : (
            breakers.map((row) => (
              <Chip
                key={row.id}
                color={row.state === 'failing' ? 'warning' : 'error'}
                label={`${row.id}: ${row.state}${row.state === 'failing' ? ` (${row.consecutiveFailures})` : ''}`}
              />
            ))
          )}
        </Stack>
        <Typography component="h3" variant="subtitle1" sx={{ mt: 2 }}>
          Latest openings
        </Typography>
        {openings.length === 0 ? (
          <Typography>None</Typography>
        ) : (
          <ul data-testid="breaker-openings">
            {openings.map((row) => (
              <li key={row.id}>
                {row.accessKeyId}: opened {new Date(row.openedAt).toLocaleString()} after {reasonsText(row.reasons)};{' '}
                {row.closedAt === null ? 'still open' : `open ${duration(row.openMs)}`}; {row.bedrockRequests} requests
                to Bedrock
              </li>
            ))}
          </ul>
        )}
      </CardContent>
    </Card>
  );
}
