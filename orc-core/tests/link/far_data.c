/* -fno-PIC references to data the test places more than 2 GiB away, in
   the forms compilers emit: loads, stores of immediates, read-modify-write
   with flags used afterwards, SSE loads, byte stores, indexed absolute
   addresses, an address taken into a register and into memory, a locked
   add. */
extern int far_int;
extern long far_table[8];
extern double far_double;
extern char far_bytes[16];
extern void *far_ptr_slot;

int far_read(void) { return far_int; }
void far_write(int v) { far_int = v; far_bytes[3] = (char)v; }
int far_increment_is_zero(void) {
    /* add then branch on the flags the add set. */
    if (++far_int == 0) return 1;
    return 0;
}
double far_scale(double x) { return x * far_double; }
long far_index(int i) { return far_table[i]; }
int *far_address(void) { return &far_int; }
void far_store_address(void) { far_ptr_slot = &far_table[2]; }
void far_atomic_add(int v) { __atomic_fetch_add(&far_int, v, __ATOMIC_SEQ_CST); }
