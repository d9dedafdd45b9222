import { useEffect, useState } from 'react';
import { Alert, AlertTitle, Box } from '@mui/material';
import { usePermissions } from 'react-admin';
import { apiUrl, httpClient, type Permissions } from './providers.ts';

/**
 * What the operator ignored in the manifests folder (local mode), above the dashboard: a
 * document the schemas refuse or a file that does not read whole is otherwise seen only in the
 * operator's log, while the resources it meant to define are simply missing from every list.
 * Asked only by the roles that read everything (the API refuses the others).
 */
export function IgnoredManifests() {
  const { permissions } = usePermissions<Permissions>();
  const [ignored, setIgnored] = useState<string[]>([]);
  const readsAll = permissions?.read === 'all' && permissions.role !== 'developer';
  useEffect(() => {
    if (!readsAll) return;
    let live = true;
    const ask = () =>
      httpClient(`${apiUrl}/ignored-manifests`).then(
        ({ json }) => live && setIgnored((json as { ignored: string[] }).ignored),
        () => undefined,
      );
    void ask();
    // A file fixed or broken while the dashboard stays open shows within the interval.
    const timer = setInterval(() => void ask(), 30_000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [readsAll]);
  if (ignored.length === 0) return null;
  return (
    <Alert severity="warning" sx={{ mb: 2 }} data-testid="ignored-manifests">
      <AlertTitle>The operator ignored part of the manifests folder</AlertTitle>
      What these define is not in effect until the file is fixed:
      <Box component="ul" sx={{ m: 0, pl: 3 }}>
        {ignored.map((problem) => (
          <li key={problem}>{problem}</li>
        ))}
      </Box>
    </Alert>
  );
}
