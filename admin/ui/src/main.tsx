import { lazy, StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { useEffect, useState } from 'react';
import { Alert, Button, Divider, Typography } from '@mui/material';
import {
  Admin,
  AppBar,
  Layout,
  Login,
  LoginForm,
  Resource,
  TitlePortal,
  UserMenu,
  useGetIdentity,
  usePermissions,
  type LayoutProps,
} from 'react-admin';
import { dataProvider } from './data-provider.ts';
import { authProvider, canWrite, ssoKey, tokenKey, type Permissions } from './providers.ts';
import { darkTheme, lightTheme } from './theme.ts';

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
const teamBudgets = () => import('./team-budgets.tsx');
const TeamBudgetList = lazy(() => teamBudgets().then((module) => ({ default: module.TeamBudgetList })));
const TeamBudgetShow = lazy(() => teamBudgets().then((module) => ({ default: module.TeamBudgetShow })));
const TeamBudgetCreate = lazy(() => teamBudgets().then((module) => ({ default: module.TeamBudgetCreate })));
const TeamBudgetEdit = lazy(() => teamBudgets().then((module) => ({ default: module.TeamBudgetEdit })));
const AuditList = lazy(() => import('./audit.tsx').then((module) => ({ default: module.AuditList })));
const SessionList = lazy(() => import('./sessions.tsx').then((module) => ({ default: module.SessionList })));
const MyKeys = lazy(() => import('./my-keys.tsx').then((module) => ({ default: module.MyKeys })));

/** A developer's home is their own keys (the dashboard's usage is not theirs to read). */
const Home = () => {
  const { permissions } = usePermissions<Permissions>();
  if (permissions === undefined) return null;
  return permissions.role === 'developer' ? <MyKeys /> : <Dashboard />;
};

/**
 * The account menu's button shows the user's name; its accessible name must contain that text
 * (WCAG 2.5.3, axe label-content-name-mismatch), which react-admin's fixed "Profile" does not.
 */
const AccountMenu = () => {
  const { identity } = useGetIdentity();
  return <UserMenu label={identity?.fullName === undefined ? 'Account' : `${identity.fullName}: account menu`} />;
};

/** Every page's title is its one h1 (react-admin's is an h6 without a heading level of its own). */
const TitledAppBar = () => (
  <AppBar userMenu={<AccountMenu />}>
    <TitlePortal component="h1" variant="h6" />
  </AppBar>
);
const TitledLayout = (props: LayoutProps) => <Layout {...props} appBar={TitledAppBar} />;
/** Why a single sign-on came back to the login page (the server's words, from the redirect). */
const ssoError = new URLSearchParams(location.search).get('sso_error');

/**
 * Single sign-on when the server has it configured; the password form below it is the
 * break-glass local login.
 */
function SsoButton() {
  const [offered, setOffered] = useState(false);
  useEffect(() => {
    fetch('/admin/auth/methods')
      .then((response) => response.json() as Promise<{ oidc?: boolean }>)
      .then((methods) => setOffered(methods.oidc === true))
      .catch(() => setOffered(false));
  }, []);
  if (!offered && ssoError === null) return null;
  return (
    <>
      {ssoError === null ? null : (
        <Alert severity="error" sx={{ mx: 2, mt: 1 }}>
          {ssoError}
        </Alert>
      )}
      {offered ? (
        <>
          <Button variant="contained" href="/admin/auth/oidc/login" sx={{ mx: 2, mt: 2 }}>
            Sign in with single sign-on
          </Button>
          <Divider sx={{ mt: 2 }}>
            <Typography variant="caption">break-glass local login</Typography>
          </Divider>
        </>
      ) : null}
    </>
  );
}
const LoginPage = () => (
  <Login>
    <Typography component="h1" variant="h6" sx={{ textAlign: 'center', mt: 1 }}>
      claude-code-proxy admin
    </Typography>
    <SsoButton />
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
      dashboard={Home}
      layout={TitledLayout}
      theme={lightTheme}
      darkTheme={darkTheme}
      loginPage={LoginPage}
      disableTelemetry
    >
      {(permissions: Permissions | undefined) => {
        // Pages a role cannot use are not offered (the server refuses them regardless).
        const writes = canWrite(permissions);
        const myKeys = <Resource name="my-keys" options={{ label: 'My keys' }} list={MyKeys} />;
        // A developer gets their own keys and nothing else.
        if (permissions?.role === 'developer') return myKeys;
        return (
          <>
            <Resource
              name="users"
              list={UserList}
              show={UserShow}
              create={writes ? UserCreate : undefined}
              edit={writes ? UserEdit : undefined}
              recordRepresentation="name"
            />
            <Resource
              name="access-keys"
              options={{ label: 'Access keys' }}
              list={AccessKeyList}
              create={writes ? AccessKeyCreate : undefined}
              edit={writes ? AccessKeyEdit : undefined}
              recordRepresentation="id"
            />
            <Resource
              name="bedrock-keys"
              options={{ label: 'Bedrock keys' }}
              list={BedrockKeyList}
              create={writes ? BedrockKeyCreate : undefined}
              edit={writes ? BedrockKeyEdit : undefined}
            />
            <Resource
              name="team-budgets"
              options={{ label: 'Team budgets' }}
              list={TeamBudgetList}
              show={TeamBudgetShow}
              create={writes ? TeamBudgetCreate : undefined}
              edit={writes ? TeamBudgetEdit : undefined}
              recordRepresentation="namespace"
            />
            <Resource name="requests" options={{ label: 'Request log' }} list={RequestList} />
            <Resource name="breaker-events" options={{ label: 'Breaker history' }} list={BreakerEventList} />
            <Resource name="usage-breakdown" options={{ label: 'Usage and cost' }} list={UsageBreakdownList} />
            <Resource name="audit" options={{ label: 'Audit trail' }} list={AuditList} />
            {permissions?.role === 'admin' ? (
              <Resource name="sessions" options={{ label: 'Sessions' }} list={SessionList} />
            ) : null}
            {permissions?.selfService === true ? myKeys : null}
          </>
        );
      }}
    </Admin>
  );
}

// Back from single sign-on: the session is an HttpOnly cookie; remember that one was set.
if (new URLSearchParams(location.search).get('signed_in') === 'sso') {
  sessionStorage.setItem(ssoKey, '1');
  history.replaceState(null, '', `/${location.hash}`);
}
// A first visit without a session goes straight to the login page, before anything renders.
const signedIn = sessionStorage.getItem(tokenKey) !== null || sessionStorage.getItem(ssoKey) !== null;
if (!signedIn && !location.hash.startsWith('#/login')) location.replace('#/login');

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
