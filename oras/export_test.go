package oras

// SetParallelMin lowers the size from which blobs are fetched in parallel
// byte ranges, so tests exercise that path on small blobs; the returned
// function restores it.
func SetParallelMin(n int64) (restore func()) {
	old := parallelMin
	parallelMin = n
	return func() { parallelMin = old }
}
