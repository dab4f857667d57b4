/* Defines a strong symbol calls_b.c also defines. */
int counter = 7;
