import type { ReactNode } from 'react';
import { usePermissions } from 'react-admin';
import { canWrite, type Permissions } from './providers.ts';

/**
 * Shows its children only to a session that may change resources in `namespace` (hiding is
 * cosmetic: the server refuses the write anyway, with a 403 naming the role).
 */
export function Writable({ namespace, children }: { namespace?: string | undefined; children: ReactNode }) {
  const { permissions } = usePermissions<Permissions>();
  return canWrite(permissions, namespace) ? <>{children}</> : null;
}
