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

#endif
