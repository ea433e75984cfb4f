package oras

// FileStatus says how a pulled file came to be in the output directory.
type FileStatus string

// The statuses of a pulled file.
const (
	// FileDownloaded: fetched from the store in this pull.
	FileDownloaded FileStatus = "downloaded"
	// FilePresent: already in the output directory with the right digest.
	FilePresent FileStatus = "present"
	// FileResumed: verified in the staging area by an earlier, interrupted
	// pull, and not fetched again.
	FileResumed FileStatus = "resumed"
)
