import { lazy, StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { Typography } from '@mui/material';
import { Admin, AppBar, Layout, Login, LoginForm, Resource, TitlePortal, type LayoutProps } from 'react-admin';
import { dataProvider } from './data-provider.ts';
import { authProvider, tokenKey } from './providers.ts';

/**
 * Pages load on first use (Vite splits each import() into its own content-hashed chunk): the
 * login and the shell paint from the first chunk; the charts (recharts) and the forms follow.
 * react-admin's Layout renders them inside its own Suspense.
 */
const Dashboard = lazy(() => import('./dashboard.tsx').then((module) => ({ default: module.Dashboard })));
const users = () => import('./users.tsx');
const accessKeys = () => import('./access-keys.tsx');
const bedrockKeys = () => import('./bedrock-keys.tsx');
const UserList = lazy(() => users().then((module) => ({ default: module.UserList })));
const UserShow = lazy(() => users().then((module) => ({ default: module.UserShow })));
const UserCreate = lazy(() => users().then((module) => ({ default: module.UserCreate })));
const UserEdit = lazy(() => users().then((module) => ({ default: module.UserEdit })));
const AccessKeyList = lazy(() => accessKeys().then((module) => ({ default: module.AccessKeyList })));
const AccessKeyCreate = lazy(() => accessKeys().then((module) => ({ default: module.AccessKeyCreate })));
const AccessKeyEdit = lazy(() => accessKeys().then((module) => ({ default: module.AccessKeyEdit })));
const BedrockKeyList = lazy(() => bedrockKeys().then((module) => ({ default: module.BedrockKeyList })));
const BedrockKeyCreate = lazy(() => bedrockKeys().then((module) => ({ default: module.BedrockKeyCreate })));
const RequestList = lazy(() => import('./requests.tsx').then((module) => ({ default: module.RequestList })));
const BreakerEventList = lazy(() =>
  import('./breaker-events.tsx').then((module) => ({ default: module.BreakerEventList })),
);
const UsageBreakdownList = lazy(() =>
  import('./usage-breakdown.tsx').then((module) => ({ default: module.UsageBreakdownList })),
);
const BedrockKeyEdit = lazy(() => bedrockKeys().then((module) => ({ default: module.BedrockKeyEdit })));

/** Every page's title is its one h1 (react-admin's is an h6 without a heading level of its own). */
const TitledAppBar = () => (
  <AppBar>
    <TitlePortal component="h1" variant="h6" />
  </AppBar>
);
const TitledLayout = (props: LayoutProps) => <Layout {...props} appBar={TitledAppBar} />;
const LoginPage = () => (
  <Login>
    <Typography component="h1" variant="h6" sx={{ textAlign: 'center', mt: 1 }}>
      claude-code-proxy admin
    </Typography>
    <LoginForm />
  </Login>
);

/**
 * No `requireAuth`: with it, a first visit without a session rendered react-admin's
 * LogoutOnMount, which redirected to the login page hundreds of times (a blank page for 10–18
 * s). Every page checks the session itself (the dashboard and resource pages call checkAuth)
 * and the API refuses any request without one.
 */
function App() {
  return (
    <Admin
      title="claude-code-proxy"
      dataProvider={dataProvider}
      authProvider={authProvider}
      dashboard={Dashboard}
      layout={TitledLayout}
      loginPage={LoginPage}
      disableTelemetry
    >
      <Resource
        name="users"
        list={UserList}
        show={UserShow}
        create={UserCreate}
        edit={UserEdit}
        recordRepresentation="name"
      />
      <Resource
        name="access-keys"
        options={{ label: 'Access keys' }}
        list={AccessKeyList}
        create={AccessKeyCreate}
        edit={AccessKeyEdit}
        recordRepresentation="id"
      />
      <Resource
        name="bedrock-keys"
        options={{ label: 'Bedrock keys' }}
        list={BedrockKeyList}
        create={BedrockKeyCreate}
        edit={BedrockKeyEdit}
      />
      <Resource name="requests" options={{ label: 'Request log' }} list={RequestList} />
      <Resource name="breaker-events" options={{ label: 'Breaker history' }} list={BreakerEventList} />
      <Resource name="usage-breakdown" options={{ label: 'Usage and cost' }} list={UsageBreakdownList} />
    </Admin>
  );
}

// A first visit without a session goes straight to the login page, before anything renders.
if (sessionStorage.getItem(tokenKey) === null && !location.hash.startsWith('#/login')) location.replace('#/login');

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
