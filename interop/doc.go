// Package interop writes a snapshot's factors in formats that other data
// tools read directly: Apache Parquet, for Spark, pandas, DuckDB and
// Arrow. (NumPy's .npy and CSV exports need no library and live in
// package checkpoint.)
//
// A Parquet export is two files beside the ID lists, each with one row per
// user or item in the snapshot's order:
//
//	user_factors.parquet, item_factors.parquet
//	  id       BYTE_ARRAY (UTF8 string)
//	  factors  LIST<FLOAT>: the stored row, Rank float32 values
//
// For a model with biases the stored row ends with its two bias columns
// ([x_u, b_u, 1] for a user, [y_i, 1, c_i] for an item), so that the dot
// product of a user's and an item's lists plus the manifest's global_mean
// is the prediction.
package interop
