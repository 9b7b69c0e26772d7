//go:build tools

// Package tools pins Prometheus for the test environment (built by ../build.sh with
// -tags remove_all_sd: static scrape configs only, no cloud service-discovery plugins).
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
