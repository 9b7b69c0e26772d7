//go:build tools

// Package tools pins the S3 server (MinIO) this module builds for the tests' object storage.
package tools

import _ "github.com/minio/minio"
