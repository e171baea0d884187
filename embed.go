// Package miffy holds what the binary embeds from the repository root.
package miffy

import _ "embed"

// DefaultConfig is config.default.toml: every key with its default.
//
//go:embed config.default.toml
var DefaultConfig []byte
