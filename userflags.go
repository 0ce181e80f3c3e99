package modpipe

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Flags returns the pipeline's own command-line flags. Define them before
// calling Main, as on any flag.FlagSet:
//
//	goVersion := p.Flags().String("go", "stable", "Go `VERSION` to test with")
//
// Main parses them together with its own flags, so the variables hold their
// values by the time modules run, and lists them in --help in a section of
// their own. A pipeline flag may not reuse the name of one of Main's flags
// (Main exits 2 naming it). After Main has parsed the command line,
// p.Flags().Parsed() is true and p.Flags().Visit lists the pipeline flags
// that were given. Run does not parse anything: a program that calls Run
// itself parses p.Flags() as it likes.
func (p *Pipeline) Flags() *flag.FlagSet {
	if p.userFlags == nil {
		p.userFlags = flag.NewFlagSet("pipeline flags", flag.ContinueOnError)
	}
	return p.userFlags
}

// addUserFlags registers the pipeline's own flags in fs, Main's flag set,
// refusing names Main uses itself.
func (p *Pipeline) addUserFlags(fs *flag.FlagSet) error {
	if p.userFlags == nil {
		return nil
	}
	var errs []error
	p.userFlags.VisitAll(func(f *flag.Flag) {
		if fs.Lookup(f.Name) != nil {
			errs = append(errs, fmt.Errorf("the pipeline's flag -%s (p.Flags()) has the name of one of modpipe's own flags; rename it", f.Name))
			return
		}
		fs.Var(f.Value, f.Name, f.Usage)
	})
	return errors.Join(errs...)
}

// markUserFlags records, in the pipeline's own flag set, which of its flags
// Main's parse set, so that p.Flags().Parsed and Visit answer as if it had
// parsed them itself. The values are not set a second time: a repeatable
// flag would collect its values twice.
func (p *Pipeline) markUserFlags(given map[string]bool, fs *flag.FlagSet) {
	if p.userFlags == nil {
		return
	}
	p.userFlags.VisitAll(func(f *flag.Flag) {
		if !given[f.Name] {
			return
		}
		v := f.Value
		f.Value = acceptAll{}
		_ = p.userFlags.Set(f.Name, fs.Lookup(f.Name).Value.String())
		f.Value = v
	})
	_ = p.userFlags.Parse(nil)
}

// acceptAll is a flag.Value whose Set does nothing (see markUserFlags).
type acceptAll struct{}

func (acceptAll) String() string   { return "" }
func (acceptAll) Set(string) error { return nil }

// usage prints --help: modpipe's flags, then the pipeline's own.
func (p *Pipeline) usage(w io.Writer, fs *flag.FlagSet) {
	prog := filepath.Base(os.Args[0])
	fmt.Fprintf(w, "Usage: %s [flags]\n       %s workflow github|gitlab [flags]\n\nmodpipe flags:\n", prog, prog)
	own := flag.NewFlagSet("", flag.ContinueOnError)
	own.SetOutput(w)
	fs.VisitAll(func(f *flag.Flag) {
		if p.userFlags == nil || p.userFlags.Lookup(f.Name) == nil {
			own.Var(f.Value, f.Name, f.Usage)
			own.Lookup(f.Name).DefValue = f.DefValue
		}
	})
	own.PrintDefaults()
	if p.userFlags == nil {
		return
	}
	n := 0
	p.userFlags.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nPipeline flags (defined by this program with p.Flags()):\n")
	p.userFlags.SetOutput(w)
	p.userFlags.PrintDefaults()
}

// unknownFlag rewrites the flag package's "flag provided but not defined"
// into an error naming the flag and where flags are listed.
func unknownFlag(err error) error {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: ")
	if !ok {
		return fmt.Errorf("%w (see --help)", err)
	}
	return fmt.Errorf("unknown flag %s: neither modpipe nor this pipeline (p.Flags()) defines it; run with --help to list the flags", name)
}
