// HDF5's type and property-list constants are macros that expand to global ids
// Swift cannot import; these getters give them to Swift as plain functions.
#ifndef LAYERCOLLAPSE_CHDF5_SHIM_H
#define LAYERCOLLAPSE_CHDF5_SHIM_H
#include <hdf5.h>

static inline hid_t lc_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t lc_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t lc_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t lc_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t lc_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t lc_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t lc_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t lc_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t lc_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t lc_h5s_all(void) { return H5S_ALL; }
static inline unsigned lc_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned lc_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned lc_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline size_t lc_h5t_variable(void) { return H5T_VARIABLE; }
static inline hid_t lc_h5e_default(void) { return H5E_DEFAULT; }
static inline hid_t lc_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t lc_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline H5F_scope_t lc_h5f_scope_global(void) { return H5F_SCOPE_GLOBAL; }
// Enum constants, so Swift code never depends on how a C enum is imported.
static inline H5S_class_t lc_h5s_scalar(void) { return H5S_SCALAR; }
static inline H5T_cset_t lc_h5t_cset_utf8(void) { return H5T_CSET_UTF8; }
static inline H5T_str_t lc_h5t_str_nullterm(void) { return H5T_STR_NULLTERM; }
static inline H5T_class_t lc_h5t_class_float(void) { return H5T_FLOAT; }
static inline H5T_class_t lc_h5t_class_integer(void) { return H5T_INTEGER; }
static inline H5T_class_t lc_h5t_class_string(void) { return H5T_STRING; }
static inline H5T_sign_t lc_h5t_sgn_none(void) { return H5T_SGN_NONE; }
static inline H5I_type_t lc_h5i_group(void) { return H5I_GROUP; }
static inline H5I_type_t lc_h5i_dataset(void) { return H5I_DATASET; }
static inline H5_index_t lc_h5_index_name(void) { return H5_INDEX_NAME; }
static inline H5_iter_order_t lc_h5_iter_inc(void) { return H5_ITER_INC; }

#endif
