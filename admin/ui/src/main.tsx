import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { Admin, Resource } from 'react-admin';
import { Dashboard } from './dashboard.tsx';
import { authProvider, dataProvider } from './providers.ts';
import {
  AccessKeyList,
  BedrockKeyCreate,
  BedrockKeyList,
  UserCreate,
  UserEdit,
  UserList,
  UserShow,
} from './resources.tsx';

function App() {
  return (
    <Admin
      title="claude-code-proxy"
      dataProvider={dataProvider}
      authProvider={authProvider}
      dashboard={Dashboard}
      requireAuth
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
      <Resource name="access-keys" options={{ label: 'Access keys' }} list={AccessKeyList} recordRepresentation="id" />
      <Resource
        name="bedrock-keys"
        options={{ label: 'Bedrock keys' }}
        list={BedrockKeyList}
        create={BedrockKeyCreate}
      />
    </Admin>
  );
}

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
