import { Alert, Box, Typography } from '@mui/material';
import { useFormState } from 'react-hook-form';
import { ArrayInput, NumberInput, SelectInput, SimpleFormIterator, TextInput } from 'react-admin';

/**
 * The facade's answer to a refused save, above the fields (providers.ts puts it in
 * `root.serverError`); the fields it names carry their own message too.
 */
export function ServerErrors() {
  const { errors } = useFormState();
  const message = (errors.root as { serverError?: { message?: string } } | undefined)?.serverError?.message;
  return message === undefined ? null : (
    <Alert severity="error" role="alert" sx={{ mb: 2, width: '100%' }} data-testid="server-error">
      {message}
    </Alert>
  );
}

const regionPattern = /^[a-z]{2}(-[a-z]+)+-\d$/;
/** The same pattern the operator's schema enforces, so most mistakes are caught before the round trip. */
const region = (value: string | null | undefined) =>
  value === undefined || value === null || value === '' || regionPattern.test(value) ? undefined : 'e.g. us-east-1';

export const routingChoices = ['PlanWithFailover', 'PlanOnly', 'BedrockOnly'].map((id) => ({ id, name: id }));

/**
 * An access key's Bedrock settings, used on failover or for BedrockOnly: region, API, default
 * model and the model map (Claude Code's model name → Bedrock model id or inference profile).
 */
export function BedrockInputs() {
  return (
    <Box sx={{ width: '100%', maxWidth: 720 }}>
      <Typography variant="h2" sx={{ fontSize: '1.1rem', fontWeight: 500, mt: 2, mb: 1 }}>
        Bedrock (failover)
      </Typography>
      <TextInput
        source="bedrock.region"
        label="Bedrock region"
        helperText="Empty: the proxy's AWS_REGION"
        validate={region}
        fullWidth
      />
      <SelectInput
        source="bedrock.api"
        label="Bedrock API"
        choices={[
          { id: 'Converse', name: 'Converse' },
          { id: 'InvokeModel', name: 'InvokeModel' },
        ]}
        emptyText="Not set: the BedrockKey's, else InvokeModel"
        helperText="Wins over the BedrockKey's API when set"
        fullWidth
      />
      <TextInput
        source="bedrock.model"
        label="Bedrock model"
        helperText="Model id or inference profile for models not in the map"
        fullWidth
      />
      <ArrayInput source="modelMapRows" label="Model map">
        <SimpleFormIterator inline disableReordering>
          <TextInput source="from" label="Claude Code model" helperText={false} />
          <TextInput source="to" label="Bedrock model id" helperText={false} />
        </SimpleFormIterator>
      </ArrayInput>
    </Box>
  );
}

/**
 * Budget and rate limits of a user or a key: the common caps (the API takes every field of
 * `budget` and `rateLimits`; the README lists them). Empty means no cap.
 */
export function LimitInputs() {
  return (
    <Box sx={{ width: '100%', maxWidth: 720 }}>
      <Typography variant="h2" sx={{ fontSize: '1.1rem', fontWeight: 500, mt: 2, mb: 1 }}>
        Budget and rate limits
      </Typography>
      <Box sx={{ display: 'flex', flexWrap: 'wrap', columnGap: 2 }}>
        <NumberInput source="budget.daily.usd" label="Daily budget (USD)" min={0} helperText="Resets 00:00 UTC" />
        <NumberInput
          source="budget.monthly.usd"
          label="Monthly budget (USD)"
          min={0}
          helperText="Resets on the 1st, UTC"
        />
        <NumberInput source="budget.softLimitPercent" label="Warn at (%)" min={1} max={100} helperText="Default 80" />
        <NumberInput source="rateLimits.requestsPerMinute" label="Requests per minute" min={1} />
        <NumberInput source="rateLimits.concurrentStreams" label="Concurrent streams" min={1} />
        <NumberInput
          source="rateLimits.bedrock.requestsPerMinute"
          label="Bedrock requests per minute"
          min={1}
          helperText="Only for traffic Bedrock serves"
        />
      </Box>
    </Box>
  );
}
