//go:build !dlogbugs

package verify

// buildTags are the build tags of the cluster's dlog binary.
var buildTags []string
