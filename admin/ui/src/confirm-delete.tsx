import { useState } from 'react';
import {
  Alert,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
  List,
  ListItem,
  ListItemText,
} from '@mui/material';
import DeleteIcon from '@mui/icons-material/Delete';
import { useDataProvider, useNotify, useRedirect, useRefresh, type DataProvider } from 'react-admin';

export interface Dependent {
  resource: 'access-keys' | 'bedrock-keys';
  id: string;
}

const all = { pagination: { page: 1, perPage: 1000 }, sort: { field: 'id', order: 'ASC' as const } };

/** What goes with a resource when it is deleted: a user's access keys and their Bedrock keys, an access key's Bedrock keys. */
export async function dependentsOf(dataProvider: DataProvider, resource: string, id: string): Promise<Dependent[]> {
  const bedrockOf = async (accessKeyId: string) =>
    (await dataProvider.getList('bedrock-keys', { ...all, filter: { accessKeyId } })).data.map((key) => ({
      resource: 'bedrock-keys' as const,
      id: String(key.id),
    }));
  if (resource === 'access-keys') return bedrockOf(id);
  if (resource !== 'users') return [];
  const keys = (await dataProvider.getList('access-keys', { ...all, filter: { userId: id } })).data;
  const nested = await Promise.all(keys.map((key) => bedrockOf(String(key.id))));
  // Bedrock keys before the access keys they name, access keys before the user they belong to.
  return [...nested.flat(), ...keys.map((key) => ({ resource: 'access-keys' as const, id: String(key.id) }))];
}

const kindNames: Record<string, string> = {
  users: 'user',
  'access-keys': 'access key',
  'bedrock-keys': 'Bedrock key',
};

/**
 * Delete after a confirmation that names everything that goes with the resource; the dependents
 * are deleted first (each a DELETE the facade answers), so nothing is left pointing at nothing.
 */
export function ConfirmDelete({ resource, id, redirectTo }: { resource: string; id: string; redirectTo?: string }) {
  const dataProvider = useDataProvider();
  const notify = useNotify();
  const refresh = useRefresh();
  const redirect = useRedirect();
  const [dependents, setDependents] = useState<Dependent[]>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const kind = kindNames[resource] ?? resource;
  const open = async () => {
    setError(undefined);
    try {
      setDependents(await dependentsOf(dataProvider, resource, id));
    } catch (caught) {
      notify(caught instanceof Error ? caught.message : String(caught), { type: 'error' });
    }
  };
  const confirm = async () => {
    setBusy(true);
    try {
      for (const dependent of dependents ?? [])
        await dataProvider.delete(dependent.resource, { id: dependent.id, previousData: { id: dependent.id } });
      await dataProvider.delete(resource, { id, previousData: { id } });
      setDependents(undefined);
      notify(`Deleted ${kind} ${id}`, { type: 'info' });
      if (redirectTo === undefined) refresh();
      else redirect(redirectTo, resource);
    } catch (caught) {
      setError(caught instanceof Error ? caught.message : String(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <Button size="small" color="error" startIcon={<DeleteIcon />} onClick={() => void open()}>
        Delete
      </Button>
      <Dialog
        open={dependents !== undefined}
        onClose={() => !busy && setDependents(undefined)}
        aria-labelledby="delete-title"
      >
        <DialogTitle id="delete-title">
          Delete {kind} {id}?
        </DialogTitle>
        <DialogContent>
          {error === undefined ? null : (
            <Alert severity="error" sx={{ mb: 2 }}>
              {error}
            </Alert>
          )}
          <DialogContentText>
            {dependents?.length === 0
              ? 'Nothing else is deleted with it.'
              : 'These are deleted with it (their keys stop working at once):'}
          </DialogContentText>
          {dependents?.length === 0 ? null : (
            <List dense data-testid="delete-dependents">
              {dependents?.map((dependent) => (
                <ListItem key={`${dependent.resource}/${dependent.id}`}>
                  <ListItemText primary={`${kindNames[dependent.resource]} ${dependent.id}`} />
                </ListItem>
              ))}
            </List>
          )}
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setDependents(undefined)} disabled={busy}>
            Cancel
          </Button>
          <Button color="error" variant="contained" onClick={() => void confirm()} disabled={busy}>
            Delete
          </Button>
        </DialogActions>
      </Dialog>
    </>
  );
}
