package partition

import (
	"errors"
	"fmt"
)

// Format names a ratings input format.
type Format string

// The input formats. FormatAuto detects one of the others from the first
// bytes of the input.
const (
	FormatAuto      Format = "auto"
	FormatCSV       Format = "csv"       // RFC 4180; header optional; user,item[,rating[,...]]
	FormatTSV       Format = "tsv"       // MovieLens 100K u.data: user \t item \t rating \t timestamp
	FormatMovieLens Format = "movielens" // MovieLens 1M/10M ratings.dat: user::item::rating::timestamp
	FormatMM        Format = "mm"        // Matrix Market coordinate (real, integer or pattern; general)
	FormatParquet   Format = "parquet"   // Apache Parquet: flat columns user, item[, rating] (scan_parquet.go)
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatAuto, FormatCSV, FormatTSV, FormatMovieLens, FormatMM, FormatParquet:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want auto, csv, tsv, movielens, mm or parquet)", s)
}

// BadLinePolicy says what to do with a line that cannot be parsed.
type BadLinePolicy int

const (
	// FailOnBadLine stops at the first bad line with a *LineError.
	FailOnBadLine BadLinePolicy = iota
	// SkipBadLine skips bad lines and counts them in ScanStats.Skipped.
	SkipBadLine
)

// ParseBadLinePolicy checks an --on-bad-line value.
func ParseBadLinePolicy(s string) (BadLinePolicy, error) {
	switch s {
	case "fail":
		return FailOnBadLine, nil
	case "skip":
		return SkipBadLine, nil
	}
	return 0, fmt.Errorf("unknown --on-bad-line %q (want fail or skip)", s)
}

// ScanOptions configure Scan.
type ScanOptions struct {
	// Name is the file name used in error messages ("ratings.csv:17: ...").
	Name string
	// Format of the input; FormatAuto (or "") detects it.
	Format Format
	// OnBadLine chooses between failing and skipping.
	OnBadLine BadLinePolicy
	// Implicit allows records without a rating column; their rating is 1.
	// Without it a missing rating is a bad line.
	Implicit bool
	// Columns names the Parquet columns of the user, item and rating (the
	// rating may be left out for implicit data); nil takes the first
	// three. Text formats ignore it.
	Columns []string
}

// ScanStats describe a finished scan.
type ScanStats struct {
	Format  Format // the format used (the detected one for FormatAuto)
	Lines   int64  // lines read, including header, comments and blank lines
	Records int64  // records handed to the callback
	Skipped int64  // bad lines skipped under SkipBadLine
}

// RecordFunc receives one rating. user and item are only valid during the
// call: copy them to keep them. An error it returns stops the scan and is
// returned by Scan unchanged.
type RecordFunc func(user, item []byte, rating float32) error

// Sentinel errors; test with errors.Is.
var (
	// ErrBadLine is matched by every *LineError.
	ErrBadLine = errors.New("partition: bad input line")
	// ErrEmpty: the input holds no rating at all.
	ErrEmpty = errors.New("partition: no ratings")
	// ErrFormat: the format could not be detected, or the input's structure
	// (such as a Matrix Market header) does not match the format.
	ErrFormat = errors.New("partition: unrecognised input format")
)

// LineError is a bad input line. Its message is "FILE:LINE: reason", the
// form the CLI prints after "error: ".
type LineError struct {
	File   string
	Line   int64 // 1-based
	Reason string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason) }

// Is makes errors.Is(err, ErrBadLine) true for every *LineError.
func (e *LineError) Is(target error) bool { return target == ErrBadLine }
