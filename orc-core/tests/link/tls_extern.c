/* A thread-local of another object; the error test resolves it to an
   address that no linked object published (as a host variable would be). */
extern __thread int elsewhere;
int read_elsewhere(void) { return elsewhere; }
