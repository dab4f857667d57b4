/* Local-dynamic access to a thread-local of another object: refused (each
   linked object is its own TLS module). */
extern __thread int elsewhere;
int read_elsewhere(void) { return elsewhere; }
