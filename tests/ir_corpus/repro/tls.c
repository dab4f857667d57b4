__thread int counter = 2;
int main(void) { counter += 3; return counter; }
