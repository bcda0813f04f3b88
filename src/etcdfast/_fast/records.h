/* Allocate an instance of a tuple subclass (our NamedTuple result types) with
 * n empty slots, for the caller to fill with PyTuple_SET_ITEM. This is what
 * tuple.__new__ does internally, minus building an intermediate tuple and the
 * Python-level __new__ call that a NamedTuple constructor costs. */
#ifndef ETCDFAST_RECORDS_H
#define ETCDFAST_RECORDS_H
#include <Python.h>

static inline PyObject *etcdfast_new_record(PyObject *type, Py_ssize_t n)
{
    PyTypeObject *t = (PyTypeObject *)type;
    return t->tp_alloc(t, n);
}

/* The same, for records that can never be part of a reference cycle: their
 * fields are bytes, ints, None, enum members or other such records, all set
 * once before the record is handed out. The cyclic GC need not track them,
 * and must not: a 100k-key range would otherwise allocate 100k tracked
 * objects and trigger ~140 collections while it is being decoded. (CPython
 * itself untracks such tuples, but only lazily, after paying for the
 * collections.) */
static inline PyObject *etcdfast_new_atomic_record(PyObject *type, Py_ssize_t n)
{
    PyObject *rec = etcdfast_new_record(type, n);
    if (rec != NULL && PyObject_GC_IsTracked(rec))
        PyObject_GC_UnTrack(rec);
    return rec;
}

#endif
