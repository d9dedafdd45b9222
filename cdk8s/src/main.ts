import { buildApp } from './app.ts';

// `node cdk8s/src/main.ts [namespace]`: the manifests on stdout (kubectl apply -f -).
const { app } = buildApp({ namespace: process.argv[2] ?? 'ccproxy' });
process.stdout.write(app.synthYaml());
