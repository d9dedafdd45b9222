//go:build tools

// Package tools pins what cdk8s/test/prometheus-crds.ts builds and runs: controller-gen, and the
// Prometheus Operator API types it generates the ServiceMonitor and PrometheusRule CRDs from,
// exactly as upstream generates its own (the test API server has no Prometheus Operator).
package tools

import (
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
