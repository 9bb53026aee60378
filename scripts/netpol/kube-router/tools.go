//go:build tools

// Package tools pins kube-router's command as a dependency of this wrapper module.
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
