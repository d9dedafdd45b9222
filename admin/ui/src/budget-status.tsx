import { Box, Chip, LinearProgress, Typography } from '@mui/material';
import { useRecordContext } from 'react-admin';

/** One period of `status.budget` (operator/src/reconcile/budget-status.ts). */
interface PeriodStatus {
  spentUsd?: string;
  limitUsd?: string;
  spentTokens?: number;
  limitTokens?: number;
  percent?: number;
  resetsAt?: string;
}
interface BudgetStatus {
  state: string;
  day?: PeriodStatus;
  month?: PeriodStatus;
}

const stateColors: Record<string, 'success' | 'warning' | 'error' | 'default'> = {
  Ok: 'success',
  Warning: 'warning',
  Exhausted: 'error',
};

/** "$12.30 of $50.00 · 800 of 1,000 tokens": every cap the period has. */
function spentText(period: PeriodStatus): string {
  const parts: string[] = [];
  if (period.limitUsd !== undefined) parts.push(`$${period.spentUsd ?? '0.00'} of $${period.limitUsd}`);
  if (period.limitTokens !== undefined)
    parts.push(
      `${(period.spentTokens ?? 0).toLocaleString('en-US')} of ${period.limitTokens.toLocaleString('en-US')} tokens`,
    );
  return parts.join(' · ');
}

function PeriodLine({ label, period }: { label: string; period: PeriodStatus }) {
  const percent = period.percent ?? 0;
  const color = percent >= 100 ? 'error' : percent >= 80 ? 'warning' : 'primary';
  return (
    <Box sx={{ minWidth: 220, maxWidth: 420 }} data-testid={`budget-${label.toLowerCase().replace(' ', '-')}`}>
      <Typography variant="body2">
        {label}: {spentText(period)} ({percent}%)
      </Typography>
      <LinearProgress
        variant="determinate"
        value={Math.min(100, percent)}
        color={color}
        aria-label={`${label} budget used: ${percent}%`}
        sx={{ height: 6, borderRadius: 3, my: 0.5 }}
      />
      {period.resetsAt === undefined ? null : (
        <Typography variant="caption" color="text.secondary">
          resets {new Date(period.resetsAt).toISOString().replace('T', ' ').replace(':00.000Z', ' UTC')}
        </Typography>
      )}
    </Box>
  );
}

/**
 * Spend against budget, as the operator last wrote it in the resource's status: a state chip
 * (Ok, Warning past the soft limit, Exhausted: requests get 402) and a bar per period. "No
 * budget" when the resource has none; the spend shown is as of the last reconcile.
 */
export function BudgetStatusField({
  label: _label,
  compact = false,
  summary = false,
}: {
  label?: string;
  compact?: boolean;
  /** One chip (state and the fuller period's percent): for a list's column, where bars do not fit. */
  summary?: boolean;
}) {
  const record = useRecordContext<{ budgetStatus?: BudgetStatus | null; budget?: unknown }>();
  if (record === undefined) return null;
  const status = record.budgetStatus;
  if (status === null || status === undefined)
    return (
      <Typography variant="body2" color="text.secondary">
        {record.budget === null || record.budget === undefined ? (summary ? 'None' : 'No budget') : 'Not reported yet'}
      </Typography>
    );
  if (summary) {
    const percent = Math.max(status.day?.percent ?? 0, status.month?.percent ?? 0);
    return (
      <Chip
        size="small"
        color={stateColors[status.state] ?? 'default'}
        label={`${status.state} · ${percent}%`}
        data-testid="budget-state"
      />
    );
  }
  return (
    <Box sx={{ display: 'flex', flexDirection: compact ? 'row' : 'column', gap: 1, flexWrap: 'wrap' }}>
      <div>
        <Chip
          size="small"
          color={stateColors[status.state] ?? 'default'}
          label={status.state}
          data-testid="budget-state"
        />
      </div>
      {status.day === undefined ? null : <PeriodLine label="Today" period={status.day} />}
      {status.month === undefined ? null : <PeriodLine label="This month" period={status.month} />}
    </Box>
  );
}
