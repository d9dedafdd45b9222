import { useState } from 'react';
import {
  Alert,
  Box,
  Button,
  Checkbox,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  FormControlLabel,
  Stack,
  Typography,
} from '@mui/material';
import { useNotify, useRefresh } from 'react-admin';
import { apiUrl, httpClient } from './providers.ts';

export interface IssuedKey {
  id: string;
  accessKey: string;
  baseUrl: string;
}

/** A value with its own copy button (the Clipboard API; the page is same-origin and user-initiated). */
function Copyable({ label, copy, value, testId }: { label: string; copy: string; value: string; testId: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <Box sx={{ mb: 2 }}>
      <Typography variant="body2" gutterBottom>
        {label}
      </Typography>
      <Stack direction={{ xs: 'column', sm: 'row' }} spacing={1} sx={{ alignItems: { sm: 'center' } }}>
        <Box
          component="pre"
          data-testid={testId}
          sx={{
            m: 0,
            p: 1,
            flex: 1,
            minWidth: 0,
            bgcolor: 'action.hover',
            overflowX: 'auto',
            fontSize: 13,
            whiteSpace: 'pre-wrap',
            wordBreak: 'break-all',
          }}
        >
          {value}
        </Box>
        <Button
          variant="outlined"
          onClick={() =>
            navigator.clipboard.writeText(value).then(
              () => setCopied(true),
              () => setCopied(false),
            )
          }
        >
          {copied ? 'Copied' : copy}
        </Button>
      </Stack>
    </Box>
  );
}

/**
 * The one moment a key is visible: the API returns it only in the answer to issue/rotate. The
 * dialog cannot be dismissed by accident (Esc and clicks outside do nothing): it closes only
 * after the administrator ticks "I have copied it" and presses Done. Closing it forgets the key.
 */
export function KeyOnceDialog({ issued, onClose }: { issued: IssuedKey | undefined; onClose: () => void }) {
  const [confirmed, setConfirmed] = useState(false);
  if (issued === undefined) return null;
  const line = `export ANTHROPIC_BASE_URL=${issued.baseUrl}`;
  const close = () => {
    setConfirmed(false);
    onClose();
  };
  return (
    <Dialog
      open
      // Esc and backdrop clicks are reasons MUI passes here; neither may lose the key.
      onClose={() => undefined}
      disableEscapeKeyDown
      aria-labelledby="key-once-title"
      maxWidth="md"
      fullWidth
    >
      <DialogTitle id="key-once-title">Access key {issued.id}</DialogTitle>
      <DialogContent>
        <Alert severity="warning" sx={{ mb: 2 }}>
          This key is shown only now. Copy it before closing this dialog.
        </Alert>
        <Copyable
          label="Paste into the developer's shell, then run claude:"
          copy="Copy line"
          value={line}
          testId="base-url-line"
        />
        <Copyable label="Key alone:" copy="Copy key" value={issued.accessKey} testId="access-key" />
        <FormControlLabel
          control={<Checkbox checked={confirmed} onChange={(event) => setConfirmed(event.target.checked)} />}
          label="I have copied it"
        />
      </DialogContent>
      <DialogActions>
        <Button onClick={close} variant="contained" disabled={!confirmed}>
          Done
        </Button>
      </DialogActions>
    </Dialog>
  );
}

/** Revoke or rotate one key (rotation shows the new key once; the old one keeps its grace period). */
export function KeyActions({
  id,
  revoked,
  path = 'access-keys',
  onChange,
}: {
  id: string;
  revoked: boolean;
  /** The API collection: the admin's `access-keys`, or a developer's own `my-keys`. */
  path?: string;
  /** Called after a rotate or revoke (pages that keep their own state reload). */
  onChange?: () => void;
}) {
  const [issued, setIssued] = useState<IssuedKey>();
  const [confirm, setConfirm] = useState<'revoke' | 'rotate'>();
  const notify = useNotify();
  const refresh = useRefresh();
  const run = async (action: 'revoke' | 'rotate') => {
    setConfirm(undefined);
    try {
      const { json } = await httpClient(`${apiUrl}/${path}/${encodeURIComponent(id)}/${action}`, {
        method: 'POST',
      });
      if (action === 'rotate') setIssued(json as IssuedKey);
      else notify(`Key ${id} revoked`, { type: 'info' });
      refresh();
      onChange?.();
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
