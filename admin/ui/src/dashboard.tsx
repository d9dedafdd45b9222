import { useEffect, useMemo, useState } from 'react';
import { Alert, Box, Card, CardContent, CardHeader, MenuItem, Stack, TextField, Typography } from '@mui/material';
import { Title, useAuthState } from 'react-admin';
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { apiUrl, httpClient } from './providers.ts';
import { BreakerCard } from './breaker-events.tsx';
import { IgnoredManifests } from './ignored-manifests.tsx';

interface SeriesRow {
  bucketStart: string;
  provider: 'plan' | 'bedrock';
  totalTokens: number;
  requests: number;
}
interface Summary {
  requests: number;
  failovers: number;
  failoverShare: number;
  topUsers: Array<{ userId: string | null; name: string; totalTokens: number; requests: number }>;
  byProvider: Array<{ provider: string; totalTokens: number; requests: number }>;
}

const day = 86_400_000;
const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * Usage from the aggregates: tokens over time by provider, top users and the failover share,
 * for a date range and optionally one user or key (`namespace/name`).
 */
export function Dashboard() {
  const [from, setFrom] = useState(isoDate(Date.now() - 6 * day));
  const [to, setTo] = useState(isoDate(Date.now()));
  const [bucket, setBucket] = useState<'hour' | 'day'>('hour');
  const [userId, setUserId] = useState('');
  const [accessKeyId, setAccessKeyId] = useState('');
  const [series, setSeries] = useState<SeriesRow[]>([]);
  const [summary, setSummary] = useState<Summary>();
  const [error, setError] = useState<string>();
  const [choices, setChoices] = useState<{ users: string[]; keys: string[] }>({ users: [], keys: [] });
  // Nothing is asked of the API before the session is known (without one, react-admin redirects to the login).
  const { authenticated } = useAuthState();

  // The user and key filters pick from what exists: free text that matches nothing cannot be typed.
  useEffect(() => {
    if (authenticated !== true) return;
    let live = true;
    const ids = (json: unknown) => (json as Array<{ id: string }>).map((row) => row.id);
    Promise.all([
      httpClient(`${apiUrl}/users?_start=0&_end=1000&_sort=id`),
      httpClient(`${apiUrl}/access-keys?_start=0&_end=1000&_sort=id`),
    ]).then(
      ([users, keys]) => live && setChoices({ users: ids(users.json), keys: ids(keys.json) }),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [authenticated]);

  useEffect(() => {
    if (authenticated !== true) return;
    const params = new URLSearchParams({ from: `${from}T00:00:00Z`, to: `${to}T23:59:59Z`, bucket });
    if (userId !== '') params.set('userId', userId);
    if (accessKeyId !== '') params.set('accessKeyId', accessKeyId);
    let live = true;
    Promise.all([httpClient(`${apiUrl}/usage?${params}`), httpClient(`${apiUrl}/usage/summary?${params}`)]).then(
      ([rows, totals]) => {
        if (!live) return;
        setSeries(rows.json as SeriesRow[]);
        setSummary(totals.json as Summary);
        setError(undefined);
      },
      (caught: unknown) => live && setError(caught instanceof Error ? caught.message : String(caught)),
    );
    return () => {
      live = false;
    };
  }, [authenticated, from, to, bucket, userId, accessKeyId]);

  // One point per bucket with a column per provider, as the stacked chart wants it.
  const points = useMemo(() => {
    const byBucket = new Map<string, { bucket: string; plan: number; bedrock: number }>();
    for (const row of series) {
      const label = bucket === 'hour' ? row.bucketStart.slice(5, 16).replace('T', ' ') : row.bucketStart.slice(0, 10);
      const point = byBucket.get(label) ?? { bucket: label, plan: 0, bedrock: 0 };
      point[row.provider] += row.totalTokens;
      byBucket.set(label, point);
    }
    return [...byBucket.values()];
  }, [series, bucket]);

  return (
    <Box sx={{ p: 2 }}>
      <Title title="Usage" />
      <IgnoredManifests />
      <Box
        component="form"
        aria-label="Usage filters"
        sx={{ display: 'flex', flexWrap: 'wrap', gap: 2, mb: 2, '& > *': { width: { xs: '100%', sm: 200 } } }}
      >
        <TextField
          label="From"
          type="date"
          value={from}
          onChange={(event) => setFrom(event.target.value)}
          slotProps={{ inputLabel: { shrink: true } }}
        />
        <TextField
          label="To"
          type="date"
          value={to}
          onChange={(event) => setTo(event.target.value)}
          slotProps={{ inputLabel: { shrink: true } }}
        />
        <TextField
          select
          label="Bucket"
          value={bucket}
          onChange={(event) => setBucket(event.target.value as 'hour' | 'day')}
        >
          <MenuItem value="hour">hour</MenuItem>
          <MenuItem value="day">day</MenuItem>
        </TextField>
        <TextField select label="User" value={userId} onChange={(event) => setUserId(event.target.value)}>
          <MenuItem value="">all users</MenuItem>
          {choices.users.map((id) => (
            <MenuItem key={id} value={id}>
              {id}
            </MenuItem>
          ))}
        </TextField>
        <TextField select label="Key" value={accessKeyId} onChange={(event) => setAccessKeyId(event.target.value)}>
          <MenuItem value="">all keys</MenuItem>
          {choices.keys.map((id) => (
            <MenuItem key={id} value={id}>
              {id}
            </MenuItem>
          ))}
        </TextField>
      </Box>
      {error === undefined ? null : <Alert severity="error">{error}</Alert>}
      <Stack direction={{ xs: 'column', md: 'row' }} spacing={2} sx={{ mb: 2 }}>
        <Card sx={{ flex: 1 }}>
          <CardContent>
            <Typography variant="overline">Requests</Typography>
            <Typography variant="h4" data-testid="total-requests">
              {summary?.requests ?? 0}
            </Typography>
          </CardContent>
        </Card>
        <Card sx={{ flex: 1 }}>
          <CardContent>
            <Typography variant="overline">Failover rate</Typography>
            <Typography variant="h4" data-testid="failover-share">
              {((summary?.failoverShare ?? 0) * 100).toFixed(1)}%
            </Typography>
            <Typography variant="body2">
              {summary?.failovers ?? 0} requests served by Bedrock after Plan failed
            </Typography>
          </CardContent>
        </Card>
      </Stack>
      <Stack direction={{ xs: 'column', lg: 'row' }} spacing={2}>
        <Card sx={{ flex: 2, minWidth: 0 }}>
          <CardHeader title="Tokens over time by provider" />
          <CardContent>
            {points.length === 0 ? (
              <Typography>No usage in this range.</Typography>
            ) : (
              <ResponsiveContainer width="100%" height={280}>
                <BarChart data={points} role="img" aria-label="Tokens over time by provider">
                  <CartesianGrid strokeDasharray="3 3" />
                  <XAxis dataKey="bucket" />
                  <YAxis />
                  <Tooltip />
                  <Legend />
                  <Bar dataKey="plan" name="Anthropic (Plan)" stackId="tokens" fill="#c15f3c" />
                  <Bar dataKey="bedrock" name="Bedrock" stackId="tokens" fill="#5a6b82" />
                </BarChart>
              </ResponsiveContainer>
            )}
          </CardContent>
        </Card>
        <Card sx={{ flex: 1, minWidth: 0 }}>
          <CardHeader title="Top users" />
          <CardContent>
            {(summary?.topUsers.length ?? 0) === 0 ? (
              <Typography>No users with usage.</Typography>
            ) : (
              <ResponsiveContainer width="100%" height={280}>
                <BarChart data={summary?.topUsers ?? []} layout="vertical" role="img" aria-label="Top users by tokens">
                  <XAxis type="number" />
                  <YAxis type="category" dataKey="name" width={100} />
                  <Tooltip />
                  <Bar dataKey="totalTokens" name="tokens" fill="#c15f3c" />
                </BarChart>
              </ResponsiveContainer>
            )}
          </CardContent>
        </Card>
      </Stack>
      <Box sx={{ mt: 2 }}>
        <BreakerCard />
      </Box>
    </Box>
  );
}
