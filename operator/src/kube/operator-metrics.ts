/** The operators' metrics are defined once, for both modes, in `../metrics.ts`. */
export { operatorMetrics, type OperatorMetrics } from '../metrics.ts';
