// Comparing explainers by metrics (explain/metrics, explain/sanity) on the same inputs.
export { METRICS, applicableMetrics, compareExplainers, randomExplainer, type ComparedExplainer, type CompareOptions as CompareExplainersOptions, type Comparison as ExplainerComparison, type MetricContext, type MetricSpec } from './compare.ts';
