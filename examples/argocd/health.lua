-- Argo CD health check for ccproxy.io ProxyUser, AccessKey and BedrockKey (one script for all
-- three kinds). It reads the kstatus conditions the operator writes: Ready / Reconciling /
-- Stalled, and status.observedGeneration.
local hs = { status = "Progressing", message = "Waiting for the ccproxy operator" }
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Pending deletion: the operator revokes the key, then removes its finalizer"
  return hs
end
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local ready, reconciling, stalled
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then ready = condition end
  if condition.type == "Reconciling" then reconciling = condition end
  if condition.type == "Stalled" then stalled = condition end
end
-- Stalled needs a human (bad spec, missing Secret or user): Degraded.
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message or stalled.reason or "Stalled"
  return hs
end
-- Reconciling covers transient trouble (database or KMS unreachable) that heals by itself.
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = reconciling.message or "Reconciling"
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end
-- Ready=False without Stalled or Reconciling is deliberate: a revoked key or a suspended user.
if ready ~= nil and ready.status == "False" then
  hs.status = "Suspended"
  hs.message = ready.message or ready.reason or ""
  return hs
end
return hs
