package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// Output formats (-o).
const (
	outputTable = "table"
	outputJSON  = "json"
)

// printer prints records either as one JSON object per line (-o json) or
// as an aligned table (the default) with a header.
type printer struct {
	w      io.Writer
	format string
	rows   [][]string
	err    error
}

func (e *env) printer() *printer { return &printer{w: e.stdout, format: e.output} }

// row adds one record: obj is what JSON output prints, cells the table row.
func (p *printer) row(obj any, cells ...string) {
	if p.err != nil {
		return
	}
	if p.format == outputJSON {
		p.err = writeJSON(p.w, obj)
		return
	}
	p.rows = append(p.rows, cells)
}

// flush writes the table (with header) for table output.
func (p *printer) flush(header ...string) error {
	if p.err != nil || p.format == outputJSON {
		return p.err
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	if len(header) > 0 {
		writeCells(tw, header)
	}
	for _, r := range p.rows {
		writeCells(tw, r)
	}
	return tw.Flush()
}

func writeCells(w io.Writer, cells []string) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, c)
	}
	fmt.Fprintln(w)
}

// writeJSON writes obj as one line of JSON.
func writeJSON(w io.Writer, obj any) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}
