import { useCallback, useEffect, useState } from 'react';
import {
  Alert,
  Box,
  Button,
  MenuItem,
  Paper,
  Table,
  TableBody,
  TableCell,
  TableContainer,
  TableHead,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import { Title } from 'react-admin';
import { KeyActions, KeyOnceDialog, type IssuedKey } from './key-dialogs.tsx';
import { apiUrl, httpClient } from './providers.ts';

/**
 * A developer's own keys (self-service): the ProxyUser linked to their identity, the limits their
 * team admin set, their keys with rotate and revoke, a form to issue one more, and their usage.
 * Everything comes from the /admin/api/my* routes, which act only on that one user; the server
 * refuses what the limits do not allow, and the refusal is shown as it says it.
 */
interface Profile {
  user: { id: string; displayName: string };
  selfService: { enabled: boolean; maxKeys: number; routingModes: string[] };
  activeKeys: number;
}
interface MyKey {
  id: string;
  routing: string;
  status: string;
  revoked: boolean;
  keyPrefix: string | null;
}
interface Usage {
  days: number;
  keys: Array<{ id: string; requests: number; totalTokens: number; costUsd: number }>;
}

const message = (caught: unknown) => (caught instanceof Error ? caught.message : String(caught));

export function MyKeys() {
  const [profile, setProfile] = useState<Profile>();
  const [keys, setKeys] = useState<MyKey[]>([]);
  const [usage, setUsage] = useState<Usage>();
  const [problem, setProblem] = useState<string>();
  const [issued, setIssued] = useState<IssuedKey>();
  const [routing, setRouting] = useState('');

  const load = useCallback(async () => {
    try {
      const [me, mine, used] = await Promise.all([
        httpClient(`${apiUrl}/my/profile`),
        httpClient(`${apiUrl}/my-keys?_sort=name&_order=ASC`),
        httpClient(`${apiUrl}/my-usage`),
      ]);
      setProfile(me.json as Profile);
      setKeys(mine.json as MyKey[]);
      setUsage(used.json as Usage);
    } catch (caught) {
      setProblem(message(caught));
    }
  }, []);
  useEffect(() => void load(), [load]);

  const issue = async () => {
    setProblem(undefined);
    try {
      const { json } = await httpClient(`${apiUrl}/my-keys`, {
        method: 'POST',
        body: JSON.stringify(routing === '' ? {} : { routing }),
      });
      setIssued(json as IssuedKey);
    } catch (caught) {
      setProblem(message(caught));
    }
    await load();
  };

  const policy = profile?.selfService;
  return (
    // At most the viewport's width less the layout's own padding (8 px a side on a phone): the
    // tables scroll inside their containers instead of widening the page.
    <Box sx={{ p: 2, maxWidth: { xs: 'calc(100vw - 16px)', sm: 'none' }, boxSizing: 'border-box' }}>
      <Title title="My keys" />
      {problem === undefined ? null : (
        <Alert severity="error" sx={{ mb: 2 }} role="alert">
          {problem}
        </Alert>
      )}
      {profile === undefined || policy === undefined ? null : (
        <Paper sx={{ p: 2, mb: 2 }}>
          <Typography component="h2" variant="h6">
            {profile.user.displayName === '' ? profile.user.id : `${profile.user.displayName} (${profile.user.id})`}
          </Typography>
          <Typography variant="body2" sx={{ mb: 2 }}>
            {policy.enabled
              ? `Self-service is on: up to ${policy.maxKeys} active keys (you hold ${profile.activeKeys}); routing: ${policy.routingModes.join(', ')}. Keys do not expire; revoke the ones you no longer use.`
              : 'Self-service is off for you: ask your team admin. You can still revoke your keys.'}
          </Typography>
          <Box sx={{ display: 'flex', flexWrap: 'wrap', gap: 2, alignItems: 'center' }}>
            <TextField
              select
              label="Routing"
              value={routing === '' ? (policy.routingModes[0] ?? '') : routing}
              onChange={(event) => setRouting(event.target.value)}
              sx={{ minWidth: 220 }}
              disabled={!policy.enabled}
            >
              {policy.routingModes.map((mode) => (
                <MenuItem key={mode} value={mode}>
                  {mode}
                </MenuItem>
              ))}
            </TextField>
            <Button variant="contained" onClick={() => void issue()} disabled={!policy.enabled}>
              Issue a new key
            </Button>
          </Box>
        </Paper>
      )}
      <Typography component="h2" variant="h6" sx={{ mb: 1 }}>
        Keys
      </Typography>
      <TableContainer component={Paper} sx={{ mb: 2 }}>
        <Table size="small" aria-label="My keys">
          <TableHead>
            <TableRow>
              <TableCell>Name</TableCell>
              <TableCell>Routing</TableCell>
              <TableCell>Status</TableCell>
              <TableCell>Key starts with</TableCell>
              <TableCell>Actions</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {keys.length === 0 ? (
              <TableRow>
                <TableCell colSpan={5}>No keys yet.</TableCell>
              </TableRow>
            ) : (
              keys.map((key) => (
                <TableRow key={key.id} data-testid={`my-key-${key.id}`}>
                  <TableCell>{key.id}</TableCell>
                  <TableCell>{key.routing}</TableCell>
                  <TableCell>{key.revoked ? 'Revoked' : key.status}</TableCell>
                  <TableCell>{key.keyPrefix ?? ''}</TableCell>
                  <TableCell>
                    <KeyActions id={key.id} revoked={key.revoked} path="my-keys" onChange={() => void load()} />
                  </TableCell>
                </TableRow>
              ))
            )}
          </TableBody>
        </Table>
      </TableContainer>
      <Typography component="h2" variant="h6" sx={{ mb: 1 }}>
        Usage, last {usage?.days ?? 30} days
      </Typography>
      <TableContainer component={Paper}>
        <Table size="small" aria-label="My usage">
          <TableHead>
            <TableRow>
              <TableCell>Key</TableCell>
              <TableCell align="right">Requests</TableCell>
              <TableCell align="right">Tokens</TableCell>
              <TableCell align="right">Cost (USD)</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {(usage?.keys ?? []).length === 0 ? (
              <TableRow>
                <TableCell colSpan={4}>No usage yet.</TableCell>
              </TableRow>
            ) : (
              (usage?.keys ?? []).map((row) => (
                <TableRow key={row.id}>
                  <TableCell>{row.id}</TableCell>
                  <TableCell align="right">{row.requests}</TableCell>
                  <TableCell align="right">{row.totalTokens}</TableCell>
                  <TableCell align="right">{row.costUsd.toFixed(4)}</TableCell>
                </TableRow>
              ))
            )}
          </TableBody>
        </Table>
      </TableContainer>
      <KeyOnceDialog issued={issued} onClose={() => setIssued(undefined)} />
    </Box>
  );
}
