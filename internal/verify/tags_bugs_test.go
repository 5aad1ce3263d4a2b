//go:build dlogbugs

package verify

// buildTags are the build tags of the cluster's dlog binary: the
// sensitivity tests switch bugs on in its processes.
var buildTags = []string{"dlogbugs"}
