//go:build !unix

package connlimit

// ForDescriptors returns Limits with no total: the open-file limit is
// not known here.
func ForDescriptors(perAddr int) Limits { return Limits{PerAddr: perAddr} }
