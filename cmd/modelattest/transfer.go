package main

import (
	"fmt"
	"io"
	"time"

	"github.com/modelattest/modelattest/oras"
)

// printPushSummary says in one line how the files reached the registry.
func printPushSummary(w io.Writer, res *oras.PushResult) {
	n := map[oras.BlobStatus]int{}
	for _, b := range res.Blobs {
		n[b.Status]++
	}
	fmt.Fprintf(w, "Files: %d uploaded, %d mounted, %d skipped; %s sent of %s in %s\n",
		n[oras.BlobUploaded], n[oras.BlobMounted], n[oras.BlobSkipped], humanBytes(res.Sent), humanBytes(res.Bytes), humanSeconds(res.Seconds))
}

// humanBytes writes n in binary units, as the progress bars do.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// humanSeconds writes a duration rounded for people.
func humanSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
