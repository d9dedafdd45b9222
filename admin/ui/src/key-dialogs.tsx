import { useState } from 'react';
import {
  Alert,
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  MenuItem,
  TextField,
  Typography,
} from '@mui/material';
import { useNotify, useRefresh } from 'react-admin';
import { apiUrl, httpClient } from './providers.ts';

export interface IssuedKey {
  id: string;
  accessKey: string;
  baseUrl: string;
}

/**
 * The one moment a key is visible: the API returns it only in the answer to issue/rotate, so
 * this dialog says so and offers the line to paste. Closing it forgets the key.
 */
export function KeyOnceDialog({ issued, onClose }: { issued: IssuedKey | undefined; onClose: () => void }) {
  const [copied, setCopied] = useState(false);
  if (issued === undefined) return null;
  const line = `export ANTHROPIC_BASE_URL=${issued.baseUrl}`;
  const copy = () => {
    navigator.clipboard.writeText(line).then(
      () => setCopied(true),
      () => setCopied(false),
    );
  };
  return (
    <Dialog open onClose={onClose} aria-labelledby="key-once-title" maxWidth="md" fullWidth>
      <DialogTitle id="key-once-title">Access key {issued.id}</DialogTitle>
      <DialogContent>
        <Alert severity="warning" sx={{ mb: 2 }}>
          This key is shown only now. Copy it before closing this dialog.
        </Alert>
        <Typography variant="body2" gutterBottom>
          Paste into the developer&apos;s shell, then run <code>claude</code>:
        </Typography>
        <Box
          component="pre"
          data-testid="base-url-line"
          sx={{ p: 1, bgcolor: 'grey.100', overflowX: 'auto', fontSize: 13 }}
        >
          {line}
        </Box>
        <Typography variant="caption" component="div" data-testid="access-key">
          Key: {issued.accessKey}
        </Typography>
      </DialogContent>
      <DialogActions>
        <Button onClick={copy}>{copied ? 'Copied' : 'Copy line'}</Button>
        <Button onClick={onClose} variant="contained">
          Done
        </Button>
      </DialogActions>
    </Dialog>
  );
}

const routings = ['PlanWithFailover', 'PlanOnly', 'BedrockOnly'] as const;

/** Issue a key for one user: name and routing, then the copy-once dialog. */
export function IssueKeyButton({ namespace, user }: { namespace: string; user: string }) {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState(`${user}-laptop`);
  const [routing, setRouting] = useState<string>('PlanWithFailover');
  const [error, setError] = useState<string>();
  const [issued, setIssued] = useState<IssuedKey>();
  const refresh = useRefresh();
  const submit = async () => {
    try {
      const { json } = await httpClient(`${apiUrl}/access-keys`, {
        method: 'POST',
        body: JSON.stringify({ namespace, name, user, routing }),
      });
      setOpen(false);
      setError(undefined);
      setIssued(json as IssuedKey);
      refresh();
    } catch (caught) {
      setError(caught instanceof Error ? caught.message : String(caught));
    }
  };
  return (
    <>
      <Button variant="contained" onClick={() => setOpen(true)}>
        Issue key
      </Button>
      <Dialog open={open} onClose={() => setOpen(false)} aria-labelledby="issue-key-title">
        <DialogTitle id="issue-key-title">Issue an access key for {user}</DialogTitle>
        <DialogContent>
          {error === undefined ? null : (
            <Alert severity="error" sx={{ mb: 2 }}>
              {error}
            </Alert>
          )}
          <TextField
            autoFocus
            margin="dense"
            label="Key name"
            value={name}
            onChange={(event) => setName(event.target.value)}
            fullWidth
          />
          <TextField
            select
            margin="dense"
            label="Routing"
            value={routing}
            onChange={(event) => setRouting(event.target.value)}
            fullWidth
          >
            {routings.map((value) => (
              <MenuItem key={value} value={value}>
                {value}
              </MenuItem>
            ))}
          </TextField>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setOpen(false)}>Cancel</Button>
          <Button onClick={() => void submit()} variant="contained">
            Issue
          </Button>
        </DialogActions>
      </Dialog>
      <KeyOnceDialog issued={issued} onClose={() => setIssued(undefined)} />
    </>
  );
}

/** Revoke or rotate one key (rotation shows the new key once; the old one keeps its grace period). */
export function KeyActions({ id, revoked }: { id: string; revoked: boolean }) {
  const [issued, setIssued] = useState<IssuedKey>();
  const [confirm, setConfirm] = useState<'revoke' | 'rotate'>();
  const notify = useNotify();
  const refresh = useRefresh();
  const run = async (action: 'revoke' | 'rotate') => {
    setConfirm(undefined);
    try {
      const { json } = await httpClient(`${apiUrl}/access-keys/${encodeURIComponent(id)}/${action}`, {
        method: 'POST',
      });
      if (action === 'rotate') setIssued(json as IssuedKey);
      else notify(`Key ${id} revoked`, { type: 'info' });
      refresh();
    } catch (caught) {
      notify(caught instanceof Error ? caught.message : String(caught), { type: 'error' });
    }
  };
  return (
    <>
      <Button size="small" onClick={() => setConfirm('rotate')} disabled={revoked}>
        Rotate
      </Button>
      <Button size="small" color="error" onClick={() => setConfirm('revoke')} disabled={revoked}>
        Revoke
      </Button>
      <Dialog open={confirm !== undefined} onClose={() => setConfirm(undefined)} aria-labelledby="confirm-title">
        <DialogTitle id="confirm-title">{confirm === 'revoke' ? `Revoke ${id}?` : `Rotate ${id}?`}</DialogTitle>
        <DialogContent>
          <Typography>
            {confirm === 'revoke'
              ? 'The key stops working on every proxy replica within a second.'
              : 'A new key is issued; the current one keeps working for the rotation grace period.'}
          </Typography>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setConfirm(undefined)}>Cancel</Button>
          <Button
            color={confirm === 'revoke' ? 'error' : 'primary'}
            variant="contained"
            onClick={() => confirm !== undefined && void run(confirm)}
          >
            {confirm === 'revoke' ? 'Revoke' : 'Rotate'}
          </Button>
        </DialogActions>
      </Dialog>
      <KeyOnceDialog issued={issued} onClose={() => setIssued(undefined)} />
    </>
  );
}
