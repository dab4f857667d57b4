/* -fno-PIC: a call through a function pointer in far writable data
   (`call *hook(%rip)`) cannot be moved to a thunk. */
extern void (*far_hook)(void);
void call_hook(void) { far_hook(); }
