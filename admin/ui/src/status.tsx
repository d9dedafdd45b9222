import { Chip, Tooltip, Typography } from '@mui/material';
import { useRecordContext } from 'react-admin';

interface StatusRecord {
  status: string;
  readyReason: string;
  readyMessage: string;
}

const colors: Record<string, 'success' | 'warning' | 'error' | 'default' | 'info'> = {
  Ready: 'success',
  Suspended: 'warning',
  Revoked: 'default',
  Stalled: 'error',
  Reconciling: 'info',
};

/**
 * The facade's one status word (views.ts `statusOf`, from the CR's conditions), with the
 * operator's reason and message beside it: a Stalled resource says why without a hover.
 */
export function StatusField({ label: _label }: { label?: string }) {
  const record = useRecordContext<StatusRecord>();
  if (record === undefined) return null;
  const chip = <Chip size="small" color={colors[record.status] ?? 'default'} label={record.status} />;
  if (record.status === 'Ready') return chip;
  return (
    <Tooltip title={record.readyMessage}>
      <span>
        {chip}
        <Typography variant="caption" component="span" sx={{ ml: 1 }} data-testid="status-reason">
          {record.readyReason}
          {record.status === 'Stalled' || record.status === 'NotReady' ? `: ${record.readyMessage}` : ''}
        </Typography>
      </span>
    </Tooltip>
  );
}

export function BreakerField({ label: _label }: { label?: string }) {
  const record = useRecordContext<{ breakerState: string }>();
  if (record === undefined) return null;
  const color = record.breakerState === 'open' ? 'error' : record.breakerState === 'closed' ? 'default' : 'warning';
  return <Chip size="small" variant="outlined" color={color} label={`breaker ${record.breakerState}`} />;
}

const when = (iso: string | null | undefined) =>
  iso === null || iso === undefined ? '' : new Date(iso).toLocaleString();

/**
 * The last failover Bedrock actually served, and apart from it the last attempt that failed:
 * a failed failover is never shown as a failover.
 */
export function FailoverField({ label: _label }: { label?: string }) {
  const record = useRecordContext<{ lastFailoverAt: string | null; lastFailedFailoverAt?: string | null }>();
  if (record === undefined) return null;
  return (
    <span>
      <span data-testid="last-failover">{record.lastFailoverAt === null ? '—' : when(record.lastFailoverAt)}</span>
      {record.lastFailedFailoverAt === null || record.lastFailedFailoverAt === undefined ? null : (
        <Typography variant="caption" component="div" color="error" data-testid="failed-failover">
          failed attempt {when(record.lastFailedFailoverAt)}
        </Typography>
      )}
    </span>
  );
}
