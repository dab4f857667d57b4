/* 80 functions f_<FILE_ID>_<j>, each calling its namesakes in objects
   NEXT1 and NEXT2: compiled several times with different -D values, the
   objects form one strongly connected call graph of many symbols. */
#define CAT_(a, b, c, d) a##b##c##d
#define CAT(a, b, c, d) CAT_(a, b, c, d)
#define DECL(j) int CAT(f_, NEXT1, _, j)(int); int CAT(f_, NEXT2, _, j)(int);
#define DEF(j)                                                                 \
    int CAT(f_, FILE_ID, _, j)(int x) {                                        \
        return x <= 0 ? j : CAT(f_, NEXT1, _, j)(x - 1) + CAT(f_, NEXT2, _, j)(x - 2); \
    }
#define REP10(M, d) M(d##0) M(d##1) M(d##2) M(d##3) M(d##4) M(d##5) M(d##6) M(d##7) M(d##8) M(d##9)
#define REP80(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) \
    REP10(M, 1) REP10(M, 2) REP10(M, 3) REP10(M, 4) REP10(M, 5) REP10(M, 6) REP10(M, 7)

REP80(DECL)
REP80(DEF)
