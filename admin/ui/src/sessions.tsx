import { useState } from 'react';
import { Button, Chip, useMediaQuery } from '@mui/material';
import LogoutIcon from '@mui/icons-material/Logout';
import {
  Datagrid,
  DateField,
  FunctionField,
  List,
  SimpleList,
  TextField,
  TextInput,
  useLogout,
  useNotify,
  useRecordContext,
  useRefresh,
} from 'react-admin';
import { apiUrl, httpClient } from './providers.ts';
import { isSmall } from './users.tsx';

interface SessionRecord {
  id: string;
  subject: string;
  email: string | null;
  name: string | null;
  method: 'oidc' | 'break-glass';
  role: string;
  current: boolean;
}

const filters = [
  <TextInput key="q" source="q" label="Search" alwaysOn />,
  <TextInput key="subject" source="subject" label="Subject" />,
];
const who = (record: SessionRecord) =>
  `${record.name ?? record.email ?? record.subject}${record.method === 'break-glass' ? ' (break-glass)' : ''}`;

/**
 * Ends one session (DELETE), or every session of its person (POST …/sessions/revoke): on every
 * admin replica within a second. Ending one's own session signs out here too.
 */
function EndButtons() {
  const record = useRecordContext<SessionRecord>();
  const notify = useNotify();
  const refresh = useRefresh();
  const logout = useLogout();
  const [busy, setBusy] = useState(false);
  if (record === undefined) return null;
  const end = async (all: boolean) => {
    setBusy(true);
    try {
      if (all)
        await httpClient(`${apiUrl}/sessions/revoke`, {
          method: 'POST',
          body: JSON.stringify({ subject: record.subject }),
        });
      else await httpClient(`${apiUrl}/sessions/${encodeURIComponent(record.id)}`, { method: 'DELETE' });
      notify(all ? `Every session of ${who(record)} ended` : `Session of ${who(record)} ended`, { type: 'info' });
      if (record.current) await logout();
      else refresh();
    } catch (error) {
      notify(error instanceof Error ? error.message : String(error), { type: 'error' });
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <Button size="small" startIcon={<LogoutIcon />} disabled={busy} onClick={() => void end(false)}>
        End session
      </Button>
      <Button size="small" disabled={busy} onClick={() => void end(true)}>
        End all of {record.email ?? record.subject}
      </Button>
    </>
  );
}

/** Who is signed in to the admin now (admins only; the server refuses everyone else). */
export function SessionList() {
  const small = useMediaQuery(isSmall);
  return (
    <List filters={filters} sort={{ field: 'issuedAt', order: 'DESC' }} exporter={false} title="Sessions">
      {small ? (
        <SimpleList
          primaryText={(record) => who(record as SessionRecord)}
          secondaryText={(record) => `${record.role} · since ${record.issuedAt}`}
          linkType={false}
        />
      ) : (
        <Datagrid bulkActionButtons={false} rowClick={false}>
          <FunctionField
            label="Who"
            render={(record: SessionRecord) => (
              <>
                {who(record)} {record.current ? <Chip size="small" label="this session" /> : null}
              </>
            )}
          />
          <TextField source="email" emptyText="—" />
          <TextField source="role" label="Role at sign-in" sortable={false} />
          <DateField source="issuedAt" label="Signed in" showTime />
          <DateField source="lastSeenAt" label="Last seen" showTime />
          <DateField source="expiresAt" label="Expires" showTime />
          <EndButtons />
        </Datagrid>
      )}
    </List>
  );
}
