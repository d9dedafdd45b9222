import { Type } from 'typebox';
import type { RoutePlugin } from '../route-deps.ts';

const ignoredReply = Type.Object({
  mode: Type.Union([Type.Literal('local'), Type.Literal('kubernetes')]),
  ignored: Type.Array(Type.String()),
});

/**
 * What the operator could not use, so an admin learns it where they look (the dashboard) and
 * not only from the operator's log: local mode's refused documents and files that do not read
 * whole, each naming its file, document and reason. Admin and viewer only (file names cross
 * namespaces; a team admin gets the deny-by-default 403 of authorize.ts).
 */
export const ignoredManifestRoutes: RoutePlugin = async (app, { store }) => {
  app.get(
    '/admin/api/ignored-manifests',
    { schema: { tags: ['manifests'], response: { 200: ignoredReply } } },
    async () => ({ mode: store.mode, ignored: [...store.ignored()] }),
  );
};
