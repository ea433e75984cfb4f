package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/modelattest/modelattest/oras"
)

// outDirFlags say what pull does with an output directory that holds
// entries that are not part of the model.
type outDirFlags struct {
	overwrite, keepExtra bool
}

func (f *outDirFlags) add(fs *pflag.FlagSet) {
	fs.BoolVar(&f.overwrite, "overwrite", false, "remove what the output directory holds that is not part of the model, once the model is in place")
	fs.BoolVar(&f.keepExtra, "keep-extra", false, "keep what the output directory holds that is not part of the model (it is not verified)")
}

// apply sets the pull options; warnings go to w.
func (f *outDirFlags) apply(po *oras.PullOptions, w io.Writer) error {
	if f.overwrite && f.keepExtra {
		return usageError{fmt.Errorf("--overwrite and --keep-extra are exclusive")}
	}
	po.Overwrite, po.KeepExtra = f.overwrite, f.keepExtra
	po.Warn = func(msg string) { fmt.Fprintln(w, "WARNING: "+msg) }
	return nil
}

// pullHint adds the flags that resolve an output directory holding extra
// entries.
func pullHint(err error) error {
	var xe *oras.ExtraFilesError
	if errors.As(err, &xe) {
		return fmt.Errorf("%w; pass --overwrite to remove them once the model is in place, or --keep-extra to keep them", err)
	}
	return err
}
